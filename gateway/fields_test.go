package gateway

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/policy"
)

const fullBody = `{"country":"IE","fields":{"email":"niamh.kelly@example.ie","full_name":"Niamh Kelly","birth_date":"1988-03-02","phone":"+353 87 123 4567","ip_address":"203.0.113.77","interests":"hurling","health_condition":"asthma","location":{"lat":53.34,"lon":-6.26}}}`

func (h *harness) read(t *testing.T, tok, query string, hdr ...string) response {
	t.Helper()
	return h.do("GET", "/v1/subjects/niamh"+query, tok, "", hdr...)
}

func TestFieldLevelDecisions(t *testing.T) {
	h := newHarness(t)
	if r := h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody); r.status != 201 {
		t.Fatalf("PUT = %d %s", r.status, r.body)
	}
	support := h.tokenFrom("IE", "support")
	supportCN := h.tokenFrom("CN", "support")
	analyst := h.tokenFrom("DE", "analyst")
	ticket := []string{"Clover-Purpose", "support", "Clover-Justification", "TICKET-4711"}

	// EEA support with a purpose and a justification: contact and identity raw.
	r := h.read(t, support, "", ticket...)
	if r.status != 200 {
		t.Fatalf("support read = %d %s", r.status, r.body)
	}
	var got getResponse
	json.Unmarshal(r.body, &got)
	if got.Forms["email"] != policy.Raw || string(got.Fields["email"]) != `"niamh.kelly@example.ie"` {
		t.Errorf("EEA support email = %s in form %s, want raw", got.Fields["email"], got.Forms["email"])
	}
	if got.Forms["interests"] != policy.Pseudonym || !strings.HasPrefix(string(got.Fields["interests"]), `"tk_`) {
		t.Errorf("EEA support interests = %s (%s), want a token", got.Fields["interests"], got.Forms["interests"])
	}
	if _, ok := got.Fields["health_condition"]; ok || !contains(got.Withheld, "health_condition") {
		t.Errorf("special-category data released to support: %s", r.body)
	}
	if strings.Contains(string(r.body), "asthma") {
		t.Error("the response carries the special-category value")
	}
	if r.header.Get("Clover-Policy-Digest") == "" {
		t.Error("no Clover-Policy-Digest header")
	}

	// The same request from an employee located in CN: never raw.
	r = h.read(t, supportCN, "", ticket...)
	json.Unmarshal(r.body, &got)
	if r.status != 200 || got.Forms["email"] == policy.Raw || strings.Contains(string(r.body), "niamh.kelly") || strings.Contains(string(r.body), "Niamh Kelly") {
		t.Errorf("support from CN got raw identifiers: %s", r.body)
	}
	if got.Forms["email"] != policy.Pseudonym {
		t.Errorf("support from CN email form = %q, want pseudonym", got.Forms["email"])
	}

	// No justification: no raw.
	r = h.read(t, support, "?fields=email", "Clover-Purpose", "support")
	json.Unmarshal(r.body, &got)
	if got.Forms["email"] != policy.Pseudonym {
		t.Errorf("support without justification: email form %q, want pseudonym (%s)", got.Forms["email"], r.body)
	}

	// Tokens are scoped per purpose: the same value differs across purposes.
	r = h.read(t, analyst, "?fields=interests", "Clover-Purpose", "analytics")
	var an getResponse
	json.Unmarshal(r.body, &an)
	r2 := h.read(t, support, "?fields=interests", ticket...)
	var sp getResponse
	json.Unmarshal(r2.body, &sp)
	if an.Fields["interests"] == nil || string(an.Fields["interests"]) == string(sp.Fields["interests"]) {
		t.Errorf("tokens are linkable across purposes: %s vs %s", an.Fields["interests"], sp.Fields["interests"])
	}

	// An analyst asking for contact data: nothing permitted, 403.
	if r := h.read(t, analyst, "?fields=email,full_name", "Clover-Purpose", "analytics"); r.status != 403 {
		t.Errorf("analyst contact read = %d %s, want 403", r.status, r.body)
	}
}

func TestNoExistenceOracle(t *testing.T) {
	h := newHarness(t)
	nobody := h.tokenFrom("IE", "intern")
	if r := h.do("GET", "/v1/subjects/ghost", nobody, ""); r.status != 403 {
		t.Errorf("a caller with no rights learns the subject is missing: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/subjects/ghost", h.token("service"), ""); r.status != 404 {
		t.Errorf("service read of a missing subject = %d, want 404", r.status)
	}
}

func TestHostileHeaders(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	tok := h.token("support")
	cases := map[string][]string{
		"unknown purpose":    {"Clover-Purpose", "marketing"},
		"long justification": {"Clover-Purpose", "support", "Clover-Justification", strings.Repeat("x", 300)},
		"control chars":      {"Clover-Purpose", "support", "Clover-Justification", "T-1\x01"},
	}
	for name, hdr := range cases {
		r := h.read(t, tok, "", hdr...)
		if r.status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.status, r.body)
		}
	}
	req := newReq("GET", "/v1/subjects/niamh", tok)
	req.Header.Add("Clover-Purpose", "support")
	req.Header.Add("Clover-Purpose", "analytics")
	if r := h.serve(req); r.status != 400 {
		t.Errorf("two purposes: %d, want 400", r.status)
	}
}

func TestReidentify(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	// A service reads full_name raw; ask for the pseudonymised form via a
	// support caller without justification, who gets an SIV token.
	r := h.read(t, h.token("support"), "?fields=full_name", "Clover-Purpose", "support")
	var got getResponse
	json.Unmarshal(r.body, &got)
	var token string
	json.Unmarshal(got.Fields["full_name"], &token)
	if !strings.HasPrefix(token, "sv_") {
		t.Fatalf("full_name pseudonym = %q, want an sv_ token (%s)", token, r.body)
	}
	body := `{"field":"full_name","token":"` + token + `"}`
	ticket := []string{"Clover-Purpose", "support", "Clover-Justification", "TICKET-1"}
	r = h.do("POST", "/v1/reidentify", h.token("support"), body, ticket...)
	if r.status != 200 || r.json(t)["value"] != "Niamh Kelly" {
		t.Fatalf("reidentify = %d %s", r.status, r.body)
	}
	// From outside the jurisdiction, or without a justification: refused.
	if r := h.do("POST", "/v1/reidentify", h.tokenFrom("US", "support"), body, ticket...); r.status != 403 {
		t.Errorf("reidentify from US = %d %s", r.status, r.body)
	}
	// A token released under another purpose does not open under this one.
	other := h.gw.siv.Seal("purpose:analytics", []byte("Niamh Kelly"))
	r = h.do("POST", "/v1/reidentify", h.token("support"), `{"field":"full_name","token":"`+other+`"}`, ticket...)
	if r.status != 422 || r.errorCode(t) != "invalid_token" {
		t.Errorf("reidentify under another purpose = %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/reidentify", h.token("service"), `{"field":"email","token":"tk_x"}`); r.status != 422 {
		t.Errorf("reidentify of an HMAC field = %d %s", r.status, r.body)
	}
}

func TestPolicyReload(t *testing.T) {
	h := newHarness(t)
	h.policyDir = t.TempDir()
	before := h.gw.Policies().Digest()
	admin := h.token("admin")
	os.WriteFile(filepath.Join(h.policyDir, "a.cedar"), []byte("permit (principal, action, resource"), 0o600)
	r := h.do("POST", "/v1/admin/policies/reload", admin, "")
	if r.status != 422 || r.errorCode(t) != "invalid_policy" || !strings.Contains(string(r.body), "a.cedar:1:") {
		t.Fatalf("bad reload = %d %s", r.status, r.body)
	}
	if h.gw.Policies().Digest() != before {
		t.Fatal("a bad policy file replaced the running set")
	}
	if r := h.do("POST", "/v1/admin/policies/reload", h.token("support"), ""); r.status != 403 {
		t.Errorf("reload by support = %d", r.status)
	}
	os.WriteFile(filepath.Join(h.policyDir, "a.cedar"), []byte(`@id("only-services") permit (principal is Service, action in Action::"read", resource);`), 0o600)
	r = h.do("POST", "/v1/admin/policies/reload", admin, "")
	if r.status != 200 || h.gw.Policies().Digest() == before {
		t.Fatalf("good reload = %d %s", r.status, r.body)
	}
	// The new set is in force: ingest may no longer write.
	if r := h.do("PUT", "/v1/subjects/x1", h.token("ingest"), aliceBody); r.status != 403 {
		t.Errorf("write after reload = %d, want 403", r.status)
	}
	r = h.do("GET", "/v1/admin/policies", admin, "")
	if r.status != 200 || !strings.Contains(string(r.body), "only-services") {
		t.Errorf("policy listing = %d %s", r.status, r.body)
	}
}

// TestNoFormBeyondPolicy draws random callers, contexts and fields and
// checks every released form against a direct Cedar evaluation: the form is
// permitted, and no more revealing form the field supports is.
func TestNoFormBeyondPolicy(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	rng := rand.New(rand.NewPCG(1, 2))
	roles := []string{"support", "analyst", "service", "ingest", "dpo", "intern"}
	countries := []string{"IE", "DE", "NO", "CN", "US", "IN"}
	purposes := []string{"", "support", "analytics", "service"}
	sch := h.gw.vault.Schema()
	names := sch.Names()
	for i := 0; i < 300; i++ {
		var rs []string
		for _, r := range roles {
			if rng.IntN(3) == 0 {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			rs = []string{roles[rng.IntN(len(roles))]}
		}
		country, purpose := countries[rng.IntN(len(countries))], purposes[rng.IntN(len(purposes))]
		var hdr []string
		if purpose != "" {
			hdr = append(hdr, "Clover-Purpose", purpose)
		}
		just := ""
		if rng.IntN(2) == 0 {
			just = "T-" + string(rune('a'+rng.IntN(26)))
			hdr = append(hdr, "Clover-Justification", just)
		}
		q := "?fields=" + names[rng.IntN(len(names))] + "," + names[rng.IntN(len(names))]
		tok := h.tokenFrom(country, rs...)
		r := h.read(t, tok, q, hdr...)
		if r.status == 403 {
			continue
		}
		var got getResponse
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
			t.Fatalf("read = %d %s", r.status, r.body)
		}
		p := authn.Principal{Subject: "caller-1", Roles: rs, Country: country}
		ctx := policy.Context{Purpose: purpose, Justification: just, SubjectCountry: "IE", SubjectSite: "ie-dublin",
			SubjectJurisdiction: "eu", CallerInJurisdiction: country != "CN" && country != "US" && country != "IN"}.WithTime(h.gw.now())
		for name, form := range got.Forms {
			f, _ := sch.Field(name)
			if ok, _ := h.gw.Policies().Allowed(p, form.Action(), &f, ctx); !ok {
				t.Fatalf("%v from %s purpose %q: %s released as %s, which policy denies", rs, country, purpose, name, form)
			}
			for _, more := range []policy.Form{policy.Raw, policy.Pseudonym, policy.Generalised, policy.Masked} {
				if more == form {
					break
				}
				if ok, _ := h.gw.Policies().Allowed(p, more.Action(), &f, ctx); ok && h.gw.supports(f, more) {
					t.Fatalf("%s released as %s though %s is permitted", name, form, more)
				}
			}
		}
		for _, name := range got.Withheld {
			f, _ := sch.Field(name)
			for _, form := range []policy.Form{policy.Raw, policy.Pseudonym, policy.Generalised, policy.Masked} {
				if ok, _ := h.gw.Policies().Allowed(p, form.Action(), &f, ctx); ok && h.gw.supports(f, form) {
					t.Fatalf("%s withheld though %s is permitted", name, form)
				}
			}
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestGetResponseEncodingMatchesEncodingJSON keeps the hand-written encoder
// of the read path byte-identical to encoding/json.
func TestGetResponseEncodingMatchesEncodingJSON(t *testing.T) {
	cases := []getResponse{
		{ID: "a", Site: "ie-dublin", Fields: map[string]json.RawMessage{}, Forms: map[string]policy.Form{}, Withheld: []string{}},
		{ID: "s-00000001", Site: "no-hamar",
			Fields:   map[string]json.RawMessage{"email": json.RawMessage(`"a@b.no"`), "location": json.RawMessage(`{"lat":1,"lon":2}`), "birth_date": json.RawMessage(`"tk_x"`)},
			Forms:    map[string]policy.Form{"email": policy.Raw, "location": policy.Generalised, "birth_date": policy.Pseudonym},
			Withheld: []string{"iban", "health_condition"}},
	}
	for _, c := range cases {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got := appendGetResponse(nil, &c)
		if string(got) != string(want)+"\n" {
			t.Errorf("hand-encoded response differs:\n got %s\nwant %s", got, want)
		}
	}
}
