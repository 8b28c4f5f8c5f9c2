package auditlog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testSubject = SubjectPseudonym([]byte("log key"), []byte("handle-1"))

func readEntry() *Entry {
	return &Entry{
		Time:      time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC),
		RequestID: "req-1",
		Kind:      KindDecision,
		Site:      "eu-west",
		Actor:     &Actor{Sub: "alice", Type: "Employee", Roles: []string{"support"}, Country: "IE", Team: "t1"},
		Action:    "read",
		Subject:   testSubject,
		Decision:  Allow,
		Fields: []Field{
			{Name: "email", Form: "masked", Policies: []string{"support-masked"}},
			{Name: "name", Form: "raw", Policies: []string{"support-raw"}},
		},
		Purpose:       "support",
		Justification: "ticket <42> & co",
		Context:       &RequestContext{SubjectCountry: "FR", SubjectJurisdiction: "eu", SubjectSite: "eu-west", CallerInJurisdiction: true, Hour: 5, Weekday: "Wed"},
		Policy:        &PolicyRef{Digest: "sha256:abc", IDs: []string{"support-masked", "support-raw"}},
		Status:        200,
	}
}

func TestEncodeGolden(t *testing.T) {
	got, err := Encode(readEntry())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"time":"2026-03-04T05:06:07.123456Z","request_id":"req-1","kind":"decision","site":"eu-west",` +
		`"actor":{"sub":"alice","type":"Employee","roles":["support"],"country":"IE","team":"t1"},"action":"read",` +
		`"subject":"` + testSubject + `","decision":"allow",` +
		`"fields":[{"name":"email","form":"masked","policies":["support-masked"]},{"name":"name","form":"raw","policies":["support-raw"]}],` +
		`"purpose":"support","justification":"ticket <42> & co",` +
		`"context":{"subject_country":"FR","subject_jurisdiction":"eu","subject_site":"eu-west","caller_in_jurisdiction":true,"hour":5,"weekday":"Wed"},` +
		`"policy":{"digest":"sha256:abc","ids":["support-masked","support-raw"]},"status":200}`
	if string(got) != want {
		t.Fatalf("Encode:\n got %s\nwant %s", got, want)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	decided := uint64(41)
	for _, e := range []*Entry{readEntry(), policyEntry(), {
		Time: time.Unix(0, 0), Kind: KindRehome, Subject: testSubject, Site: "eu-north", Detail: "moved_from=eu-west",
	}, {
		Time: time.Unix(1, 0), Kind: KindTransfer, Action: "transfer", Decision: Allow, Actor: &Actor{Sub: "a", Type: "Employee"},
		Transfer: &TransferRecord{Destination: "us-analytics", Country: "US", LegalBasis: "scc", Format: "ndjson",
			Rows: 10, Suppressed: 2, Bytes: 1234, SHA256: "ab", Complete: true, Decided: &decided},
	}} {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		want := *e
		want.Time = e.Time.UTC().Truncate(time.Microsecond)
		if diff := cmp.Diff(&want, d); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		again, err := Encode(d)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("Encode(Decode(b)) != b: %s", again)
		}
	}
}

func policyEntry() *Entry {
	return &Entry{
		Time:        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Kind:        KindPolicy,
		Policy:      &PolicyRef{Digest: "sha256:abc", IDs: []string{"a"}},
		PolicyFiles: []PolicyFile{{Name: "a.cedar", Text: "@id(\"a\")\npermit(principal, action, resource);\n"}},
		Schema: []SchemaField{
			{Name: "email", Type: "email", Category: "contact", Method: "hmac"},
			{Name: "birth_date", Type: "date", Category: "identity", Method: "age-band"},
		},
		Status: 200,
	}
}

// TestEncodePolicyGolden pins where the schema goes: right after
// policy_files, before status.
func TestEncodePolicyGolden(t *testing.T) {
	got, err := Encode(policyEntry())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"time":"2026-01-01T00:00:00.000000Z","kind":"policy","policy":{"digest":"sha256:abc","ids":["a"]},` +
		`"policy_files":[{"name":"a.cedar","text":"@id(\"a\")\npermit(principal, action, resource);\n"}],` +
		`"schema":[{"name":"email","type":"email","category":"contact","method":"hmac"},` +
		`{"name":"birth_date","type":"date","category":"identity","method":"age-band"}],"status":200}`
	if string(got) != want {
		t.Fatalf("Encode:\n got %s\nwant %s", got, want)
	}
}

// schemaFirst moves an encoded policy entry's schema before its policy
// files.
func schemaFirst(s string) string {
	start := strings.Index(s, `,"schema":`)
	end := strings.Index(s, `,"status":`)
	schema := s[start+1 : end]
	s = s[:start] + s[end:]
	return strings.Replace(s, `"policy_files":`, schema+`,"policy_files":`, 1)
}

func TestSchemaRules(t *testing.T) {
	cases := map[string]func(e *Entry){
		"schema in a read": func(e *Entry) {
			e.Kind, e.PolicyFiles = KindWrite, nil
			e.Actor, e.Action, e.Decision, e.Subject = &Actor{Sub: "a", Type: "Employee"}, "write", Allow, testSubject
		},
		"field without name":     func(e *Entry) { e.Schema[0].Name = "" },
		"field without type":     func(e *Entry) { e.Schema[0].Type = "" },
		"field without category": func(e *Entry) { e.Schema[1].Category = "" },
		"field without method":   func(e *Entry) { e.Schema[1].Method = "" },
		"invalid UTF-8":          func(e *Entry) { e.Schema[1].Method = "\xff" },
	}
	for name, mutate := range cases {
		e := policyEntry()
		mutate(e)
		if _, err := Encode(e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Encode = %v, want ErrInvalidEntry", name, err)
		}
	}
	good, err := Encode(policyEntry())
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for name, in := range map[string]string{
		"empty schema":   strings.Replace(s, `"schema":[{"name":"email","type":"email","category":"contact","method":"hmac"},{"name":"birth_date","type":"date","category":"identity","method":"age-band"}]`, `"schema":[]`, 1),
		"null schema":    strings.Replace(s, `"schema":[{"name":"email","type":"email","category":"contact","method":"hmac"},{"name":"birth_date","type":"date","category":"identity","method":"age-band"}]`, `"schema":null`, 1),
		"key order":      strings.Replace(s, `{"name":"email","type":"email"`, `{"type":"email","name":"email"`, 1),
		"unknown key":    strings.Replace(s, `"method":"hmac"}`, `"method":"hmac","x":1}`, 1),
		"schema first":   schemaFirst(s),
		"missing method": strings.Replace(s, `,"method":"hmac"`, ``, 1),
	} {
		if in == s {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Decode = %v, want ErrInvalidEntry", name, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string]func(e *Entry){
		"no time":            func(e *Entry) { e.Time = time.Time{} },
		"unknown kind":       func(e *Entry) { e.Kind = "read" },
		"transfer on a read": func(e *Entry) { e.Transfer = &TransferRecord{Destination: "x"} },
		"no actor":           func(e *Entry) { e.Actor = nil },
		"actor without sub":  func(e *Entry) { e.Actor.Sub = "" },
		"no decision":        func(e *Entry) { e.Decision = "" },
		"bad decision":       func(e *Entry) { e.Decision = "maybe" },
		"no action":          func(e *Entry) { e.Action = "" },
		"raw subject":        func(e *Entry) { e.Subject = "alice@example.com" },
		"no subject":         func(e *Entry) { e.Subject = "" },
		"field without form": func(e *Entry) {
			e.Fields = append(e.Fields, Field{Name: "x"})
		},
		"policy files in a read": func(e *Entry) { e.PolicyFiles = []PolicyFile{{Name: "a", Text: "b"}} },
		"bad status":             func(e *Entry) { e.Status = 42 },
		"bad hour":               func(e *Entry) { e.Context.Hour = 24 },
		"bad weekday":            func(e *Entry) { e.Context.Weekday = "Monday" },
		"invalid UTF-8":          func(e *Entry) { e.Purpose = "\xff" },
		"too large":              func(e *Entry) { e.Detail = strings.Repeat("x", MaxEntrySize) },
	}
	for name, mutate := range cases {
		e := readEntry()
		mutate(e)
		if _, err := Encode(e); !errors.Is(err, ErrInvalidEntry) && !errors.Is(err, ErrEntryTooLarge) {
			t.Errorf("%s: Encode = %v, want an invalid-entry error", name, err)
		}
	}
	e := policyEntry()
	e.Policy = nil
	if _, err := Encode(e); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("policy entry without digest: %v", err)
	}
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	good, err := Encode(readEntry())
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := map[string]string{
		"spaces":            strings.Replace(s, `"v":1,`, `"v": 1,`, 1),
		"version 2":         strings.Replace(s, `"v":1`, `"v":2`, 1),
		"no version":        strings.Replace(s, `"v":1,`, ``, 1),
		"unknown field":     strings.Replace(s, `"v":1,`, `"v":1,"x":1,`, 1),
		"key order":         strings.Replace(s, `"v":1,"time":"2026-03-04T05:06:07.123456Z"`, `"time":"2026-03-04T05:06:07.123456Z","v":1`, 1),
		"time without µs":   strings.Replace(s, `07.123456Z`, `07Z`, 1),
		"time with offset":  strings.Replace(s, `07.123456Z`, `07.123456+00:00`, 1),
		"escaped letter":    strings.Replace(s, `"read"`, `"\u0072ead"`, 1),
		"upper-case key":    strings.Replace(s, `"kind"`, `"KIND"`, 1),
		"duplicate key":     strings.Replace(s, `"kind":"decision"`, `"kind":"write","kind":"decision"`, 1),
		"empty roles":       strings.Replace(s, `"roles":["support"],`, `"roles":[],`, 1),
		"null actor team":   strings.Replace(s, `,"team":"t1"`, `,"team":null`, 1),
		"trailing data":     s + `{}`,
		"trailing newline":  s + "\n",
		"float version":     strings.Replace(s, `"v":1`, `"v":1.0`, 1),
		"empty purpose":     strings.Replace(s, `"purpose":"support"`, `"purpose":""`, 1),
		"not json":          "v=1",
		"too large":         s[:len(s)-1] + `,"detail":"` + strings.Repeat("x", MaxEntrySize) + `"}`,
		"invalid UTF-8 str": strings.Replace(s, `"support"`, "\"\xff\"", 1),
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Decode = %v, want ErrInvalidEntry", name, err)
		}
	}
}

func TestSubjectPseudonym(t *testing.T) {
	// HMAC-SHA256 known answer (RFC 4231 test case 2).
	got := SubjectPseudonym([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Fatalf("SubjectPseudonym = %s, want %s", got, want)
	}
	if !isPseudonym(got) {
		t.Fatal("not recognised as a pseudonym")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []*Entry{readEntry(), policyEntry()} {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"time":"2026-01-01T00:00:00.000000Z","kind":"rehome","subject":"` + testSubject + `"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("Decode accepted %q but Encode fails: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Encode(Decode(b)) = %q, want %q", again, b)
		}
	})
}
