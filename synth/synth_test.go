package synth

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/schema"
	"github.com/google/go-cmp/cmp"
)

func TestID(t *testing.T) {
	for i, want := range map[int]string{1: "s-00000001", 20000: "s-00020000", 99999999: "s-99999999", 123456789: "s-123456789"} {
		if got := ID(i); got != want {
			t.Errorf("ID(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestEveryRecordFitsTheDefaultSchema(t *testing.T) {
	sch, err := schema.New(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	g := New(42)
	for i := 1; i <= 10000; i++ {
		s := g.Subject(i)
		body, err := s.PutBody()
		if err != nil {
			t.Fatal(err)
		}
		var req struct {
			Country string                     `json:"country"`
			Fields  map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("%s: %v", s.ID, err)
		}
		if !enclave.ValidCountry(req.Country) {
			t.Fatalf("%s: country %q", s.ID, req.Country)
		}
		if _, err := sch.Check(req.Fields); err != nil {
			t.Fatalf("%s (%s) does not fit the schema: %v\n%s", s.ID, s.Country, err, body)
		}
		for _, f := range []string{"full_name", "birth_date", "national_id", "email", "phone", "address", "location", "device_id", "ip_address", "interests", "bio"} {
			if _, ok := req.Fields[f]; !ok {
				t.Fatalf("%s: no %s", s.ID, f)
			}
		}
	}
}

func TestSameSeedSameOutput(t *testing.T) {
	a, b, c := New(7), New(7), New(8)
	differ := 0
	for i := 1; i <= 500; i++ {
		x, y := a.Subject(i), b.Subject(i)
		if diff := cmp.Diff(x, y); diff != "" {
			t.Fatalf("subject %d differs for the same seed:\n%s", i, diff)
		}
		if x.Country != a.Country(i) {
			t.Fatalf("Country(%d) = %s, Subject(%d).Country = %s", i, a.Country(i), i, x.Country)
		}
		if !cmp.Equal(x, c.Subject(i)) {
			differ++
		}
	}
	if differ < 490 {
		t.Errorf("only %d of 500 subjects differ between seeds 7 and 8", differ)
	}
	// Order does not matter.
	if !cmp.Equal(a.Subject(300), New(7).Subject(300)) {
		t.Error("a subject depends on what was generated before it")
	}
}

func TestCountrySpread(t *testing.T) {
	g := New(1)
	const n = 200000
	counts := map[string]int{}
	for i := 1; i <= n; i++ {
		counts[g.Country(i)]++
	}
	eea, err := enclave.ExpandCountries([]string{"EU", "EEA"})
	if err != nil {
		t.Fatal(err)
	}
	inEEA := map[string]bool{}
	for _, c := range eea {
		inEEA[c] = true
		if counts[c] == 0 && c != "LI" {
			t.Errorf("no subject from %s", c)
		}
	}
	outside := 0
	for c, k := range counts {
		if !inEEA[c] {
			outside += k
		}
		if Countries()[c] != inEEA[c] {
			t.Errorf("Countries()[%s] = %v, but the EU/EEA set says %v", c, Countries()[c], inEEA[c])
		}
	}
	if f := float64(outside) / n; f < 0.007 || f > 0.013 {
		t.Errorf("%.2f%% of subjects are from outside the EU/EEA, want about 1%%", 100*f)
	}
	if f := float64(counts["DE"]) / n; f < 0.16 || f > 0.20 {
		t.Errorf("Germany has %.1f%%, want about 18%%", 100*f)
	}
	if counts["MT"] >= counts["LU"] || counts["LU"] >= counts["EE"] || counts["DE"] <= counts["FR"] {
		t.Errorf("the spread does not follow population: %v", counts)
	}
}

// IBAN lengths from the ISO 13616 registry.
var ibanLength = map[string]int{"AT": 20, "BE": 16, "BG": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
	"ES": 24, "FI": 18, "FR": 27, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24,
	"GB": 22, "CH": 21, "BR": 29}

// Calling codes and the lengths of national mobile numbers.
var phonePlan = map[string]struct {
	code     string
	min, max int
}{
	"AT": {"43", 10, 11}, "BE": {"32", 9, 9}, "BG": {"359", 9, 9}, "CY": {"357", 8, 8}, "CZ": {"420", 9, 9},
	"DE": {"49", 10, 11}, "DK": {"45", 8, 8}, "EE": {"372", 7, 8}, "ES": {"34", 9, 9}, "FI": {"358", 9, 10},
	"FR": {"33", 9, 9}, "GR": {"30", 10, 10}, "HR": {"385", 9, 9}, "HU": {"36", 9, 9}, "IE": {"353", 9, 9},
	"IS": {"354", 7, 7}, "IT": {"39", 10, 10}, "LI": {"423", 7, 7}, "LT": {"370", 8, 8}, "LU": {"352", 9, 9},
	"LV": {"371", 8, 8}, "MT": {"356", 8, 8}, "NL": {"31", 9, 9}, "NO": {"47", 8, 8}, "PL": {"48", 9, 9},
	"PT": {"351", 9, 9}, "RO": {"40", 9, 9}, "SE": {"46", 9, 9}, "SI": {"386", 8, 8}, "SK": {"421", 9, 9},
	"US": {"1", 10, 10}, "GB": {"44", 10, 10}, "CH": {"41", 9, 9}, "CN": {"86", 11, 11}, "IN": {"91", 10, 10},
	"BR": {"55", 11, 11},
}

func onlyDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func TestFieldFormats(t *testing.T) {
	g := New(3)
	seen := map[string]bool{}
	health := 0
	const n = 20000
	emailRE := regexp.MustCompile(`^[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+$`)
	for i := 1; i <= n; i++ {
		s := g.Subject(i)
		f := s.Fields
		seen[s.Country] = true
		id := fmt.Sprintf("%s (%s)", s.ID, s.Country)

		plan, ok := phonePlan[s.Country]
		if !ok {
			t.Fatalf("no phone plan for %s", s.Country)
		}
		phone := f["phone"].(string)
		if !strings.HasPrefix(phone, "+"+plan.code+" ") {
			t.Errorf("%s: phone %q does not start with +%s", id, phone, plan.code)
		}
		if nsn := len(onlyDigits(phone)) - len(plan.code); nsn < plan.min || nsn > plan.max {
			t.Errorf("%s: phone %q has %d national digits, want %d-%d", id, phone, nsn, plan.min, plan.max)
		}

		if want, ok := ibanLength[s.Country]; ok {
			iban, _ := f["iban"].(string)
			if len(iban) != want || iban[:2] != s.Country || !ValidIBAN(iban) {
				t.Errorf("%s: IBAN %q: want %d characters starting %s with valid check digits", id, iban, want, s.Country)
			}
		} else if _, has := f["iban"]; has {
			t.Errorf("%s: has an IBAN, but its country has none", id)
		}

		if e := f["email"].(string); !emailRE.MatchString(e) {
			t.Errorf("%s: email %q", id, e)
		}
		bd, err := time.Parse(time.DateOnly, f["birth_date"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if age := ageOn(bd, Reference); age < MinAge || age > MaxAge {
			t.Errorf("%s: age %d on %s", id, age, Reference.Format(time.DateOnly))
		}
		if _, err := netip.ParseAddr(f["ip_address"].(string)); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		loc := f["location"].(map[string]any)
		lat, lon := loc["lat"].(float64), loc["lon"].(float64)
		if !nearACity(s.Country, lat, lon) {
			t.Errorf("%s: %v,%v is not near a city of the country", id, lat, lon)
		}
		if _, ok := f["health_condition"]; ok {
			health++
		}
	}
	if len(seen) < 30 {
		t.Errorf("only %d countries in %d subjects", len(seen), n)
	}
	if fr := float64(health) / n; fr < 0.02 || fr > 0.06 {
		t.Errorf("%.1f%% have a health condition, want about %.0f%%", 100*fr, 100*HealthFraction)
	}
}

func ageOn(birth, on time.Time) int {
	age := on.Year() - birth.Year()
	if on.YearDay() < birth.YearDay() && !(on.Month() > birth.Month() || on.Month() == birth.Month() && on.Day() >= birth.Day()) {
		age--
	}
	return age
}

func nearACity(cc string, lat, lon float64) bool {
	for _, c := range countries {
		if c.code != cc {
			continue
		}
		for _, ct := range c.cities {
			if math.Abs(ct.lat-lat) < 0.3 && math.Abs(ct.lon-lon) < 0.6 {
				return true
			}
		}
	}
	return false
}

func TestIBANCheckDigits(t *testing.T) {
	// Published example IBANs.
	for _, s := range []string{"DE89370400440532013000", "GB82WEST12345698765432", "NO9386011117947", "MT84MALT011000012345MTLCAST001S"} {
		if !ValidIBAN(s) {
			t.Errorf("ValidIBAN(%s) = false", s)
		}
	}
	if ValidIBAN("DE88370400440532013000") {
		t.Error("a wrong check digit passes")
	}
}

func TestNationalIDChecks(t *testing.T) {
	g := New(5)
	checked := map[string]int{}
	for i := 1; i <= 5000; i++ {
		s := g.Subject(i)
		nid := s.Fields["national_id"].(string)
		switch s.Country {
		case "ES":
			n, err := strconv.Atoi(nid[:8])
			if err != nil || nid[8] != "TRWAGMYFPDXBNJZSQVHLCKE"[n%23] {
				t.Errorf("DNI %s: wrong letter", nid)
			}
		case "PL":
			w := []int{1, 3, 7, 9, 1, 3, 7, 9, 1, 3, 1}
			sum := 0
			for k := range 11 {
				sum += int(nid[k]-'0') * w[k]
			}
			if sum%10 != 0 {
				t.Errorf("PESEL %s: wrong check digit", nid)
			}
		case "NL":
			sum := 0
			for k := range 8 {
				sum += int(nid[k]-'0') * (9 - k)
			}
			if (sum-int(nid[8]-'0'))%11 != 0 {
				t.Errorf("BSN %s fails the eleven-test", nid)
			}
		case "CZ", "SK":
			n, err := strconv.ParseInt(strings.Replace(nid, "/", "", 1), 10, 64)
			if err != nil || n%11 != 0 {
				t.Errorf("rodné číslo %s is not divisible by 11", nid)
			}
		case "SE":
			d := strings.Replace(nid, "-", "", 1)
			if luhn(d[:9]) != int(d[9]-'0') {
				t.Errorf("personnummer %s fails Luhn", nid)
			}
		default:
			continue
		}
		checked[s.Country]++
	}
	if len(checked) < 5 {
		t.Errorf("checked only %v", checked)
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{"Müller": "mueller", "Wiśniewska": "wisniewska", "O'Brien": "obrien",
		"van den Berg": "vandenberg", "Sigurðardóttir": "sigurdardottir", "Łukasz": "lukasz", "Ţurcanu": "turcanu",
		"Ġużeppi": "guzeppi", "Bråten": "braten", "Søren": "soren", "Weiß": "weiss"} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkSubject(b *testing.B) {
	g := New(1)
	for i := range b.N {
		g.Subject(i)
	}
}
