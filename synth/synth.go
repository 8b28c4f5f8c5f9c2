// Package synth generates a deterministic synthetic population of data
// subjects for seeding and load-testing a Clover enclave.
//
// Subjects are numbered from 1. Subject i has the id ID(i): "s-" followed by
// i in at least eight zero-padded digits ("s-00000001", "s-00020000"); ids
// past 99,999,999 simply grow. The same seed and number always give the
// same subject, whatever order subjects are generated in, so a load
// generator can pick a random number and know which record the server
// holds for it.
//
// Countries follow the population of the EU/EEA, plus about 1% of subjects
// from outside it (US, GB, CH, CN, IN, BR), whom an EU/EEA enclave must
// refuse. Each subject has national names, an e-mail derived from them,
// a national mobile number, a birth date (ages 16 to 90 on Reference),
// an address, coordinates near a city of the country, a device id, an IP
// address, interests, a short bio, an IBAN with valid check digits (where
// the country has IBANs), a national identifier and, for a few, a health
// condition. Every record fits schema.Default().
//
// The package is pure: no I/O, no clock, no global random state.
package synth

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Reference is the date ages are computed against, fixed so that output
// does not depend on when it is generated.
var Reference = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// Ages of generated subjects, inclusive, on Reference.
const (
	MinAge = 16
	MaxAge = 90
)

// HealthFraction is the share of subjects that carry a health_condition.
const HealthFraction = 0.04

// ID returns the id of subject i: "s-" and i zero-padded to eight digits.
func ID(i int) string { return string(AppendID(make([]byte, 0, 12), i)) }

// AppendID appends ID(i) to dst without allocating.
func AppendID(dst []byte, i int) []byte {
	dst = append(dst, 's', '-')
	var buf [20]byte
	d := strconv.AppendInt(buf[:0], int64(i), 10)
	for n := len(d); n < 8; n++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// Subject is one synthetic data subject.
type Subject struct {
	ID      string
	Country string
	// Fields holds the record in the form the API takes: strings, and
	// location as {"lat": float64, "lon": float64}.
	Fields map[string]any
}

// PutBody returns the body of PUT /v1/subjects/{id} for the subject:
// {"country": ..., "fields": {...}}.
func (s Subject) PutBody() ([]byte, error) {
	b, err := json.Marshal(struct {
		Country string         `json:"country"`
		Fields  map[string]any `json:"fields"`
	}{s.Country, s.Fields})
	if err != nil {
		return nil, fmt.Errorf("synth: encode subject %s: %w", s.ID, err)
	}
	return b, nil
}

// Generator produces the population for one seed. It is safe for
// concurrent use: it holds no mutable state.
type Generator struct {
	seed uint64
}

// New returns the generator of the population for seed.
func New(seed uint64) *Generator { return &Generator{seed: seed} }

// Seed returns the generator's seed.
func (g *Generator) Seed() uint64 { return g.seed }

// rng returns subject i's own random stream: the seed and i are mixed with
// SplitMix64 so that neighbouring subjects get unrelated PCG states.
func (g *Generator) rng(i int) *rand.Rand {
	a := splitmix(g.seed ^ 0x9e3779b97f4a7c15)
	b := splitmix(a ^ uint64(i))
	return rand.New(rand.NewPCG(splitmix(b), splitmix(b^0xd1b54a32d192ed03)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Country returns subject i's country without generating the rest of the
// record; it always equals Subject(i).Country.
func (g *Generator) Country(i int) string {
	return g.pickCountry(g.rng(i)).code
}

func (g *Generator) pickCountry(r *rand.Rand) *country {
	x := r.IntN(totalWeight)
	lo, hi := 0, len(countries)-1
	for lo < hi { // first cumulative weight > x
		mid := (lo + hi) / 2
		if cumWeight[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return countries[lo]
}

// Subject generates subject i.
func (g *Generator) Subject(i int) Subject {
	r := g.rng(i)
	c := g.pickCountry(r) // first draw: Country(i) depends on it alone
	female := r.IntN(2) == 0

	first := pick(r, c.male)
	if female {
		first = pick(r, c.female)
	}
	last := pick(r, c.last).form(female)
	full, given, family := c.fullName(r, first, last, female)

	age := MinAge + r.IntN(MaxAge-MinAge+1)
	// A birth date such that the subject is exactly `age` on Reference.
	latest := Reference.AddDate(-age, 0, 0)
	birth := latest.AddDate(0, 0, -r.IntN(365))

	ct := c.cities[r.IntN(len(c.cities))]
	fields := map[string]any{
		"full_name":   full,
		"birth_date":  birth.Format(time.DateOnly),
		"national_id": nationalID(r, c.idKind, birth, female),
		"email":       c.email(r, given, family, birth),
		"phone":       pattern(r, pickString(r, c.phones)),
		"address":     c.addressOf(r, ct),
		"location":    map[string]any{"lat": round5(ct.lat + r.NormFloat64()*0.03), "lon": round5(ct.lon + r.NormFloat64()*0.03/math.Cos(ct.lat*math.Pi/180))},
		"device_id":   uuid(r),
		"ip_address":  ipAddress(r),
	}
	interests := pickDistinct(r, interestList, 2+r.IntN(3))
	fields["interests"] = strings.Join(interests, ", ")
	fields["bio"] = bio(r, age, ct.name, interests)
	if c.iban != "" {
		fields["iban"] = iban(r, c.code, c.iban, c.banks)
	}
	if r.Float64() < HealthFraction {
		fields["health_condition"] = pickString(r, healthConditions)
	}
	return Subject{ID: ID(i), Country: c.code, Fields: fields}
}

// Countries returns every country the generator draws from, most populous
// first, and whether it is in the EU/EEA.
func Countries() map[string]bool {
	out := make(map[string]bool, len(countries))
	for _, c := range countries {
		out[c.code] = c.inside
	}
	return out
}

// name is a name in its own script and its Latin transliteration.
type name struct{ native, latin string }

// surname is a surname with its female form (the same when it has none).
type surname struct{ male, female name }

func (s surname) form(female bool) name {
	if female {
		return s.female
	}
	return s.male
}

type country struct {
	countryData
	male, female []name
	last         []surname
	cities       []city
	streets      []string
	phones       []string
	domains      []string
	banks        []string
}

var (
	countries   []*country
	cumWeight   []int
	totalWeight int
)

func init() {
	for _, d := range countryTable {
		c := &country{countryData: d, cities: d.cities}
		c.male = parseNames(d.male)
		c.female = parseNames(d.female)
		for _, s := range strings.Split(d.last, ",") {
			m, f, ok := strings.Cut(s, "/")
			if !ok {
				f = m
			}
			c.last = append(c.last, surname{parseName(m), parseName(f)})
		}
		c.streets = strings.Split(d.streets, ",")
		c.phones = strings.Split(d.phones, ",")
		c.domains = strings.Split(d.domains, ",")
		if d.banks != "" {
			c.banks = strings.Split(d.banks, ",")
		}
		countries = append(countries, c)
		totalWeight += d.weight
		cumWeight = append(cumWeight, totalWeight)
	}
}

func parseNames(list string) []name {
	var out []name
	for _, s := range strings.Split(list, ",") {
		out = append(out, parseName(s))
	}
	return out
}

func parseName(s string) name {
	native, latin, ok := strings.Cut(s, "=")
	if !ok {
		latin = native
	}
	return name{native, latin}
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

func pickString(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// pickDistinct picks n distinct elements (n ≤ len(list)).
func pickDistinct(r *rand.Rand, list []string, n int) []string {
	idx := r.Perm(len(list))[:n]
	out := make([]string, n)
	for k, i := range idx {
		out[k] = list[i]
	}
	return out
}

// fullName returns the display name, in national order, and the Latin forms
// of the given and family names.
func (c *country) fullName(r *rand.Rand, first, last name, female bool) (full, given, family string) {
	if c.twoSurnames {
		second := pick(r, c.last).form(female)
		for second == last {
			second = pick(r, c.last).form(female)
		}
		last = name{last.native + " " + second.native, last.latin + " " + second.latin}
	}
	sep := " "
	if c.noSpace {
		sep = ""
	}
	if c.familyFirst {
		return last.native + sep + first.native, first.latin, last.latin
	}
	return first.native + sep + last.native, first.latin, last.latin
}

// email derives an address from the Latin forms of the names.
func (c *country) email(r *rand.Rand, given, family string, birth time.Time) string {
	given, family = fold(given), fold(family)
	if given == "" {
		given = "user"
	}
	if family == "" {
		family = "mail"
	}
	var local string
	switch r.IntN(7) {
	case 0:
		local = given + "." + family
	case 1:
		local = given + family
	case 2:
		local = given[:1] + "." + family
	case 3:
		local = given + "_" + family
	case 4:
		local = given + "." + family + strconv.Itoa(10+r.IntN(90))
	case 5:
		local = family + "." + given + strconv.Itoa(birth.Year()%100)
	default:
		local = given + strconv.Itoa(birth.Year())
	}
	domain := pickString(r, globalDomains)
	if r.IntN(2) == 0 {
		domain = pickString(r, c.domains)
	}
	return local + "@" + domain
}

// fold turns a name into lower-case ASCII letters and hyphens for an e-mail
// local part: diacritics are dropped or spelt out (ä → ae, ß → ss, ø → o),
// spaces and apostrophes removed.
func fold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r == '-':
			b.WriteRune(r)
		case r == ' ', r == '\'', r == '.':
		default:
			if t, ok := foldTable[r]; ok {
				b.WriteString(t)
			}
		}
	}
	return b.String()
}

var foldTable = func() map[rune]string {
	m := map[rune]string{'ä': "ae", 'ö': "oe", 'ü': "ue", 'ß': "ss", 'æ': "ae", 'ø': "o", 'å': "a",
		'þ': "th", 'ð': "d", 'ł': "l", 'đ': "d", 'œ': "oe"}
	groups := map[string]string{
		"a": "àáâãāăąǎ", "c": "çćčċĉ", "d": "ď", "e": "èéêëēėęěĕ", "g": "ġğģ", "h": "ħ",
		"i": "ìíîïīįı", "k": "ķ", "l": "ľĺļ", "n": "ñńňņ", "o": "òóôõōőǒ", "r": "řŕ",
		"s": "śšşșŝ", "t": "ťţț", "u": "ùúûūůűų", "y": "ýÿ", "z": "źžż",
	}
	for to, from := range groups {
		for _, r := range from {
			m[r] = to
		}
	}
	return m
}()

// pattern expands '#' to a digit, 'N' to a digit 1-9 and 'A' to an
// upper-case letter; other characters are kept.
func pattern(r *rand.Rand, p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; ch {
		case '#':
			b = append(b, byte('0'+r.IntN(10)))
		case 'N':
			b = append(b, byte('1'+r.IntN(9)))
		case 'A':
			b = append(b, byte('A'+r.IntN(26)))
		default:
			b = append(b, ch)
		}
	}
	return string(b)
}

func (c *country) addressOf(r *rand.Rand, ct city) string {
	street := pickString(r, c.streets)
	number := strconv.Itoa(1 + r.IntN(180))
	if r.IntN(8) == 0 {
		number = strconv.Itoa(1+r.IntN(40)) + string(rune('a'+r.IntN(4)))
		if c.code == "CZ" || c.code == "SK" {
			number = strconv.Itoa(100+r.IntN(2900)) + "/" + strconv.Itoa(1+r.IntN(60))
		}
	}
	postcode := pattern(r, ct.postcode)
	var b strings.Builder
	t := c.address
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 || i+2 >= len(t) || t[i+2] != '}' {
			b.WriteString(t)
			break
		}
		b.WriteString(t[:i])
		switch t[i+1] {
		case 's':
			b.WriteString(street)
		case 'n':
			b.WriteString(number)
		case 'p':
			b.WriteString(postcode)
		case 'c':
			b.WriteString(ct.name)
		}
		t = t[i+3:]
	}
	return b.String()
}

func round5(x float64) float64 { return math.Round(x*1e5) / 1e5 }

// uuid returns a random (version 4) UUID in its canonical form.
func uuid(r *rand.Rand) string {
	var u [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for k := range 8 {
		u[k] = byte(hi >> (56 - 8*k))
		u[8+k] = byte(lo >> (56 - 8*k))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 36)
	for k, x := range u {
		if k == 4 || k == 6 || k == 8 || k == 10 {
			b = append(b, '-')
		}
		b = append(b, hexd[x>>4], hexd[x&0x0f])
	}
	return string(b)
}

// First octets of IPv4 blocks largely allocated to European networks.
var ipv4Blocks = []byte{2, 5, 31, 37, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
	91, 92, 93, 94, 95, 109, 141, 151, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217}

// ipAddress returns a public IPv4 address (three in four) or an IPv6
// address in 2a00::/12.
func ipAddress(r *rand.Rand) string {
	if r.IntN(4) != 0 {
		x := r.Uint32()
		a := netip.AddrFrom4([4]byte{pick(r, ipv4Blocks), byte(x >> 16), byte(x >> 8), byte(1 + x%254)})
		return a.String()
	}
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for k := range 8 {
		b[k] = byte(hi >> (56 - 8*k))
		b[8+k] = byte(lo >> (56 - 8*k))
	}
	b[0], b[1] = 0x2a, 0x00|b[1]&0x0f
	if r.IntN(2) == 0 { // many hosts use a short interface id
		for k := 8; k < 15; k++ {
			b[k] = 0
		}
	}
	return netip.AddrFrom16(b).String()
}

func bio(r *rand.Rand, age int, cityName string, interests []string) string {
	job := pickString(r, occupations)
	switch {
	case age < 19:
		job = "Student"
	case age < 25 && r.IntN(2) == 0:
		job = "Student"
	case age >= 67:
		job = "Retired " + strings.ToLower(job[:1]) + job[1:]
	}
	switch r.IntN(3) {
	case 0:
		return fmt.Sprintf("%s in %s. Into %s and %s.", job, cityName, interests[0], interests[1])
	case 1:
		return fmt.Sprintf("%s from %s; %s on weekends.", job, cityName, interests[0])
	default:
		return fmt.Sprintf("%s. Loves %s, %s and good coffee.", job, interests[0], interests[1])
	}
}
