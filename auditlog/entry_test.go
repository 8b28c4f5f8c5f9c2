package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var testSubject = SubjectPseudonym([]byte("log key"), []byte("handle-1"))

// v1 returns a copy of e to be encoded in version 1.
func v1(e *Entry) *Entry {
	c := *e
	c.Version = 1
	return &c
}

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
	got, err := Encode(v1(readEntry()))
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
	got, err := Encode(v1(policyEntry()))
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
	good, err := Encode(v1(policyEntry()))
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
	good, err := Encode(v1(readEntry()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	cases := map[string]string{
		"spaces":            strings.Replace(s, `"v":1,`, `"v": 1,`, 1),
		"version 2":         strings.Replace(s, `"v":1`, `"v":2`, 1),
		"version 3":         strings.Replace(s, `"v":1`, `"v":3`, 1),
		"version 0":         strings.Replace(s, `"v":1`, `"v":0`, 1),
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

// awkward holds every kind of character that Encode escapes or might be
// tempted to: quotes, backslashes, all control characters, DEL, HTML
// characters, non-ASCII, U+2028, U+2029 and U+FFFD.
const awkward = "q\"uo\\te/ <a href='x'>&amp; \x00\x01\x02\x03\x04\x05\x06\x07\b\t\n\v\f\r\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f é日本🙂\u2028\u2029\ufffd\u00a0\ufeff`"

// goldenEntries are entries of every kind, with awkward strings, whose
// encodings goldenEncodings pins.
func goldenEntries() []*Entry {
	decided := uint64(7)
	zero := uint64(0)
	at := func(ns int) time.Time { return time.Date(2026, 3, 4, 5, 6, 7, ns, time.UTC) }
	actor := func(s string) *Actor {
		return &Actor{Sub: "alice" + s, Type: "Employee", Roles: []string{"support", s, ""}, Country: "IE", Team: s}
	}
	return []*Entry{
		readEntry(),
		policyEntry(),
		{Time: at(1), RequestID: awkward, Kind: KindDecision, Site: "eu-west", Actor: actor(awkward), Action: "read",
			Subject: testSubject, Decision: Allow,
			Fields:  []Field{{Name: awkward, Form: "raw", Policies: []string{awkward, "p2"}}, {Name: "n", Form: "masked"}},
			Purpose: awkward, Justification: "<42> & \"co\"", Grant: awkward,
			Context: &RequestContext{SubjectCountry: awkward, SubjectJurisdiction: "eu", SubjectSite: awkward, Hour: 0, Weekday: "Sun"},
			Policy:  &PolicyRef{Digest: awkward, IDs: []string{awkward}}, Status: 599, Detail: awkward},
		{Time: time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), Kind: KindDecision, Actor: &Actor{Sub: "s", Type: "Service"},
			Action: "read", Subject: testSubject, Decision: Deny, Context: &RequestContext{}, Status: 403},
		{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600*5)), Kind: KindWrite,
			Actor: actor("\u2028"), Action: "write", Subject: testSubject, Decision: Allow, Site: "é", Status: 100},
		{Time: at(999), Kind: KindErase, Actor: actor("e"), Action: "erase", Subject: testSubject, Decision: Deny,
			Justification: "\x00", Policy: &PolicyRef{Digest: "d"}},
		{Time: at(0), Kind: KindRehome, Subject: testSubject, Site: "eu-north", Detail: "moved_from=eu-west\n\t" + awkward},
		{Time: at(123000), Kind: KindReidentify, Actor: actor("r"), Action: "reidentify", Subject: testSubject,
			Decision: Allow, Fields: []Field{{Name: "email", Form: "raw", Policies: []string{""}}}, Purpose: "fraud"},
		{Time: at(5e8), Kind: KindPolicy, Policy: &PolicyRef{Digest: "sha256:" + awkward, IDs: []string{"a", awkward}},
			PolicyFiles: []PolicyFile{{Name: awkward, Text: ""}, {Name: "b.cedar", Text: awkward + "\r\n"}},
			Schema:      []SchemaField{{Name: awkward, Type: awkward, Category: awkward, Method: awkward}}},
		{Time: at(2), Kind: KindPolicy, Policy: &PolicyRef{Digest: "d"}},
		{Time: at(3), Kind: KindTransfer, Actor: actor("t"), Action: "transfer", Decision: Allow,
			Transfer: &TransferRecord{Destination: awkward}},
		{Time: at(4), Kind: KindTransfer, Actor: actor("t"), Action: "transfer", Decision: Allow, Status: 200,
			Transfer: &TransferRecord{Destination: "d", Country: awkward, LegalBasis: awkward, Format: awkward,
				Rows: 1<<62 + 5, Suppressed: 9, Bytes: 1<<63 - 1, SHA256: awkward, Complete: true, Decided: &decided}},
		{Time: at(5), Kind: KindTransfer, Actor: actor("t"), Action: "transfer", Decision: Deny,
			Transfer: &TransferRecord{Destination: "d", Decided: &zero}},
	}
}

// goldenEncodings are the encodings of goldenEntries, captured from the
// encoding/json-based Encode that wrote the first logs. The canonical bytes
// of an entry must never change: logs already written are verified against
// them.
var goldenEncodings = []string{
	`{"v":1,"time":"2026-03-04T05:06:07.123456Z","request_id":"req-1","kind":"decision","site":"eu-west","actor":{"sub":"alice","type":"Employee","roles":["support"],"country":"IE","team":"t1"},"action":"read","subject":"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5","decision":"allow","fields":[{"name":"email","form":"masked","policies":["support-masked"]},{"name":"name","form":"raw","policies":["support-raw"]}],"purpose":"support","justification":"ticket <42> & co","context":{"subject_country":"FR","subject_jurisdiction":"eu","subject_site":"eu-west","caller_in_jurisdiction":true,"hour":5,"weekday":"Wed"},"policy":{"digest":"sha256:abc","ids":["support-masked","support-raw"]},"status":200}`,
	`{"v":1,"time":"2026-01-01T00:00:00.000000Z","kind":"policy","policy":{"digest":"sha256:abc","ids":["a"]},"policy_files":[{"name":"a.cedar","text":"@id(\"a\")\npermit(principal, action, resource);\n"}],"schema":[{"name":"email","type":"email","category":"contact","method":"hmac"},{"name":"birth_date","type":"date","category":"identity","method":"age-band"}],"status":200}`,
	"{\"v\":1,\"time\":\"2026-03-04T05:06:07.000000Z\",\"request_id\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"kind\":\"decision\",\"site\":\"eu-west\",\"actor\":{\"sub\":\"aliceq\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"type\":\"Employee\",\"roles\":[\"support\",\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"\"],\"country\":\"IE\",\"team\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"},\"action\":\"read\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"allow\",\"fields\":[{\"name\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"form\":\"raw\",\"policies\":[\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"p2\"]},{\"name\":\"n\",\"form\":\"masked\"}],\"purpose\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"justification\":\"<42> & \\\"co\\\"\",\"grant\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"context\":{\"subject_country\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"subject_jurisdiction\":\"eu\",\"subject_site\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"caller_in_jurisdiction\":false,\"hour\":0,\"weekday\":\"Sun\"},\"policy\":{\"digest\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"ids\":[\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"]},\"status\":599,\"detail\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}",
	`{"v":1,"time":"0001-01-01T00:00:00.000001Z","kind":"decision","actor":{"sub":"s","type":"Service"},"action":"read","subject":"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5","decision":"deny","context":{"caller_in_jurisdiction":false,"hour":0},"status":403}`,
	`{"v":1,"time":"9999-12-31T18:59:59.999999Z","kind":"write","site":"é","actor":{"sub":"alice\u2028","type":"Employee","roles":["support","\u2028",""],"country":"IE","team":"\u2028"},"action":"write","subject":"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5","decision":"allow","status":100}`,
	`{"v":1,"time":"2026-03-04T05:06:07.000000Z","kind":"erase","actor":{"sub":"alicee","type":"Employee","roles":["support","e",""],"country":"IE","team":"e"},"action":"erase","subject":"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5","decision":"deny","justification":"\u0000","policy":{"digest":"d"}}`,
	"{\"v\":1,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"rehome\",\"site\":\"eu-north\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"detail\":\"moved_from=eu-west\\n\\tq\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}",
	`{"v":1,"time":"2026-03-04T05:06:07.000123Z","kind":"reidentify","actor":{"sub":"alicer","type":"Employee","roles":["support","r",""],"country":"IE","team":"r"},"action":"reidentify","subject":"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5","decision":"allow","fields":[{"name":"email","form":"raw","policies":[""]}],"purpose":"fraud"}`,
	"{\"v\":1,\"time\":\"2026-03-04T05:06:07.500000Z\",\"kind\":\"policy\",\"policy\":{\"digest\":\"sha256:q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"ids\":[\"a\",\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"]},\"policy_files\":[{\"name\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"text\":\"\"},{\"name\":\"b.cedar\",\"text\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\\r\\n\"}],\"schema\":[{\"name\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"type\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"category\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"method\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}]}",
	`{"v":1,"time":"2026-03-04T05:06:07.000000Z","kind":"policy","policy":{"digest":"d"}}`,
	"{\"v\":1,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"transfer\",\"actor\":{\"sub\":\"alicet\",\"type\":\"Employee\",\"roles\":[\"support\",\"t\",\"\"],\"country\":\"IE\",\"team\":\"t\"},\"action\":\"transfer\",\"decision\":\"allow\",\"transfer\":{\"destination\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"country\":\"\",\"legal_basis\":\"\",\"rows\":0,\"suppressed\":0,\"bytes\":0,\"complete\":false}}",
	"{\"v\":1,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"transfer\",\"actor\":{\"sub\":\"alicet\",\"type\":\"Employee\",\"roles\":[\"support\",\"t\",\"\"],\"country\":\"IE\",\"team\":\"t\"},\"action\":\"transfer\",\"decision\":\"allow\",\"status\":200,\"transfer\":{\"destination\":\"d\",\"country\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"legal_basis\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"format\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"rows\":4611686018427387909,\"suppressed\":9,\"bytes\":9223372036854775807,\"sha256\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"complete\":true,\"decided\":7}}",
	`{"v":1,"time":"2026-03-04T05:06:07.000000Z","kind":"transfer","actor":{"sub":"alicet","type":"Employee","roles":["support","t",""],"country":"IE","team":"t"},"action":"transfer","decision":"deny","transfer":{"destination":"d","country":"","legal_basis":"","rows":0,"suppressed":0,"bytes":0,"complete":false,"decided":0}}`,
}

// goldenEncodingsV2 are the version 2 encodings of goldenEntries, captured
// when version 2 was made (and checked against the oracle): they must
// never change either.
var goldenEncodingsV2 = []string{
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.123456Z\",\"request_id\":\"req-1\",\"kind\":\"decision\",\"site\":\"eu-west\",\"actor\":{\"sub\":\"alice\",\"type\":\"Employee\",\"roles\":[\"support\"],\"country\":\"IE\",\"team\":\"t1\"},\"action\":\"read\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"allow\",\"fields\":[{\"names\":[\"email\"],\"form\":\"masked\",\"policies\":[\"support-masked\"]},{\"names\":[\"name\"],\"form\":\"raw\",\"policies\":[\"support-raw\"]}],\"purpose\":\"support\",\"justification\":\"ticket <42> & co\",\"context\":{\"subject_country\":\"FR\",\"subject_jurisdiction\":\"eu\",\"subject_site\":\"eu-west\",\"caller_in_jurisdiction\":true,\"hour\":5,\"weekday\":\"Wed\"},\"policy\":{\"digest\":\"sha256:abc\",\"ids\":[\"support-masked\",\"support-raw\"]},\"status\":200}",
	"{\"v\":2,\"time\":\"2026-01-01T00:00:00.000000Z\",\"kind\":\"policy\",\"policy\":{\"digest\":\"sha256:abc\",\"ids\":[\"a\"]},\"policy_files\":[{\"name\":\"a.cedar\",\"text\":\"@id(\\\"a\\\")\\npermit(principal, action, resource);\\n\"}],\"schema\":[{\"name\":\"email\",\"type\":\"email\",\"category\":\"contact\",\"method\":\"hmac\"},{\"name\":\"birth_date\",\"type\":\"date\",\"category\":\"identity\",\"method\":\"age-band\"}],\"status\":200}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"request_id\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"kind\":\"decision\",\"site\":\"eu-west\",\"actor\":{\"sub\":\"aliceq\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"type\":\"Employee\",\"roles\":[\"support\",\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"\"],\"country\":\"IE\",\"team\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"},\"action\":\"read\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"allow\",\"fields\":[{\"names\":[\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"],\"form\":\"raw\",\"policies\":[\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"p2\"]},{\"names\":[\"n\"],\"form\":\"masked\"}],\"purpose\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"justification\":\"<42> & \\\"co\\\"\",\"grant\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"context\":{\"subject_country\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"subject_jurisdiction\":\"eu\",\"subject_site\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"caller_in_jurisdiction\":false,\"hour\":0,\"weekday\":\"Sun\"},\"policy\":{\"digest\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"ids\":[\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"]},\"status\":599,\"detail\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}",
	"{\"v\":2,\"time\":\"0001-01-01T00:00:00.000001Z\",\"kind\":\"decision\",\"actor\":{\"sub\":\"s\",\"type\":\"Service\"},\"action\":\"read\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"deny\",\"context\":{\"caller_in_jurisdiction\":false,\"hour\":0},\"status\":403}",
	"{\"v\":2,\"time\":\"9999-12-31T18:59:59.999999Z\",\"kind\":\"write\",\"site\":\"é\",\"actor\":{\"sub\":\"alice\\u2028\",\"type\":\"Employee\",\"roles\":[\"support\",\"\\u2028\",\"\"],\"country\":\"IE\",\"team\":\"\\u2028\"},\"action\":\"write\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"allow\",\"status\":100}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"erase\",\"actor\":{\"sub\":\"alicee\",\"type\":\"Employee\",\"roles\":[\"support\",\"e\",\"\"],\"country\":\"IE\",\"team\":\"e\"},\"action\":\"erase\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"deny\",\"justification\":\"\\u0000\",\"policy\":{\"digest\":\"d\"}}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"rehome\",\"site\":\"eu-north\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"detail\":\"moved_from=eu-west\\n\\tq\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000123Z\",\"kind\":\"reidentify\",\"actor\":{\"sub\":\"alicer\",\"type\":\"Employee\",\"roles\":[\"support\",\"r\",\"\"],\"country\":\"IE\",\"team\":\"r\"},\"action\":\"reidentify\",\"subject\":\"633277027bf1366a11af3e2298934e6820862f996ecb43fd348e4c4433a152b5\",\"decision\":\"allow\",\"fields\":[{\"names\":[\"email\"],\"form\":\"raw\",\"policies\":[\"\"]}],\"purpose\":\"fraud\"}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.500000Z\",\"kind\":\"policy\",\"policy\":{\"digest\":\"sha256:q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"ids\":[\"a\",\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"]},\"policy_files\":[{\"name\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"text\":\"\"},{\"name\":\"b.cedar\",\"text\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\\r\\n\"}],\"schema\":[{\"name\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"type\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"category\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"method\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\"}]}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"policy\",\"policy\":{\"digest\":\"d\"}}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"transfer\",\"actor\":{\"sub\":\"alicet\",\"type\":\"Employee\",\"roles\":[\"support\",\"t\",\"\"],\"country\":\"IE\",\"team\":\"t\"},\"action\":\"transfer\",\"decision\":\"allow\",\"transfer\":{\"destination\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"country\":\"\",\"legal_basis\":\"\",\"rows\":0,\"suppressed\":0,\"bytes\":0,\"complete\":false}}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"transfer\",\"actor\":{\"sub\":\"alicet\",\"type\":\"Employee\",\"roles\":[\"support\",\"t\",\"\"],\"country\":\"IE\",\"team\":\"t\"},\"action\":\"transfer\",\"decision\":\"allow\",\"status\":200,\"transfer\":{\"destination\":\"d\",\"country\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"legal_basis\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"format\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"rows\":4611686018427387909,\"suppressed\":9,\"bytes\":9223372036854775807,\"sha256\":\"q\\\"uo\\\\te/ <a href='x'>&amp; \\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f é日本🙂\\u2028\\u2029�\u00a0\ufeff`\",\"complete\":true,\"decided\":7}}",
	"{\"v\":2,\"time\":\"2026-03-04T05:06:07.000000Z\",\"kind\":\"transfer\",\"actor\":{\"sub\":\"alicet\",\"type\":\"Employee\",\"roles\":[\"support\",\"t\",\"\"],\"country\":\"IE\",\"team\":\"t\"},\"action\":\"transfer\",\"decision\":\"deny\",\"transfer\":{\"destination\":\"d\",\"country\":\"\",\"legal_basis\":\"\",\"rows\":0,\"suppressed\":0,\"bytes\":0,\"complete\":false,\"decided\":0}}",
}

// The oracle: the encoding/json-based Encode and Decode that wrote and read
// the first logs (version 1), kept verbatim but for names and for version
// 2, whose wire form is oracleV2Entry, so that tests can check the
// hand-written ones against it: the same bytes out of Encode, the same
// accept/reject decision and the same entry out of Decode.

type oracleEntryFields Entry

type oracleWireEntry struct {
	V    *int    `json:"v"`
	Time *string `json:"time"`
	*oracleEntryFields
}

// oracleV2Entry is Entry as version 2 has it on the wire: Entry's fields,
// in its order and with its tags, but for Fields, which are in groups.
type oracleV2Entry struct {
	V             *int            `json:"v"`
	Time          *string         `json:"time"`
	RequestID     string          `json:"request_id,omitempty"`
	Kind          Kind            `json:"kind"`
	Site          string          `json:"site,omitempty"`
	Actor         *Actor          `json:"actor,omitempty"`
	Action        string          `json:"action,omitempty"`
	Subject       string          `json:"subject,omitempty"`
	Decision      Decision        `json:"decision,omitempty"`
	Fields        []oracleGroup   `json:"fields,omitempty"`
	Purpose       string          `json:"purpose,omitempty"`
	Justification string          `json:"justification,omitempty"`
	Grant         string          `json:"grant,omitempty"`
	Context       *RequestContext `json:"context,omitempty"`
	Policy        *PolicyRef      `json:"policy,omitempty"`
	PolicyFiles   []PolicyFile    `json:"policy_files,omitempty"`
	Schema        []SchemaField   `json:"schema,omitempty"`
	Status        int             `json:"status,omitempty"`
	Transfer      *TransferRecord `json:"transfer,omitempty"`
	Detail        string          `json:"detail,omitempty"`
}

type oracleGroup struct {
	Names    []string `json:"names"`
	Form     string   `json:"form"`
	Policies []string `json:"policies,omitempty"`
}

// oracleToV2 is e's version 2 wire form: each run of fields with the same form
// and policies (compared as their JSON) in one group.
func oracleToV2(e *Entry, v *int, t *string) *oracleV2Entry {
	w := &oracleV2Entry{V: v, Time: t, RequestID: e.RequestID, Kind: e.Kind, Site: e.Site, Actor: e.Actor,
		Action: e.Action, Subject: e.Subject, Decision: e.Decision, Purpose: e.Purpose,
		Justification: e.Justification, Grant: e.Grant, Context: e.Context, Policy: e.Policy,
		PolicyFiles: e.PolicyFiles, Schema: e.Schema, Status: e.Status, Transfer: e.Transfer, Detail: e.Detail}
	key := func(f Field) string {
		b, _ := json.Marshal(struct {
			Form     string
			Policies []string `json:",omitempty"`
		}{f.Form, f.Policies})
		return string(b)
	}
	for i, f := range e.Fields {
		if i > 0 && key(f) == key(e.Fields[i-1]) {
			g := &w.Fields[len(w.Fields)-1]
			g.Names = append(g.Names, f.Name)
			continue
		}
		w.Fields = append(w.Fields, oracleGroup{Names: []string{f.Name}, Form: f.Form, Policies: f.Policies})
	}
	return w
}

// oracleFromV2 copies the wire form w into e, a group's fields one by one.
func oracleFromV2(w *oracleV2Entry, e *Entry) {
	*e = Entry{RequestID: w.RequestID, Kind: w.Kind, Site: w.Site, Actor: w.Actor,
		Action: w.Action, Subject: w.Subject, Decision: w.Decision, Purpose: w.Purpose,
		Justification: w.Justification, Grant: w.Grant, Context: w.Context, Policy: w.Policy,
		PolicyFiles: w.PolicyFiles, Schema: w.Schema, Status: w.Status, Transfer: w.Transfer, Detail: w.Detail}
	for _, g := range w.Fields {
		for _, name := range g.Names {
			e.Fields = append(e.Fields, Field{Name: name, Form: g.Form, Policies: g.Policies})
		}
	}
}

func oracleEncode(e *Entry) ([]byte, error) {
	if err := oracleValidate(e); err != nil {
		return nil, err
	}
	v, t := e.Version, e.Time.UTC().Format(TimeLayout)
	if v == 0 {
		v = EntryVersion
	}
	var wire any = oracleWireEntry{V: &v, Time: &t, oracleEntryFields: (*oracleEntryFields)(e)}
	if v == 2 {
		wire = oracleToV2(e, &v, &t)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wire); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrEntryTooLarge, len(b), MaxEntrySize)
	}
	return b, nil
}

func oracleDecode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidEntry, len(b), MaxEntrySize)
	}
	// The version picks the wire form; whatever else this lax first
	// reading lets through, the strict one and the canonical check refuse.
	var peek struct{ V *int }
	if err := json.Unmarshal(b, &peek); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	switch {
	case peek.V == nil:
		return nil, fmt.Errorf("%w: no version (\"v\")", ErrInvalidEntry)
	case *peek.V != 1 && *peek.V != 2:
		return nil, fmt.Errorf("%w: version %d, want 1 or 2", ErrInvalidEntry, *peek.V)
	}
	e := new(Entry)
	w := oracleWireEntry{oracleEntryFields: (*oracleEntryFields)(e)}
	var w2 oracleV2Entry
	var wire any = &w
	if *peek.V == 2 {
		wire = &w2
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(wire); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the entry", ErrInvalidEntry)
	}
	if *peek.V == 2 {
		oracleFromV2(&w2, e)
		w.V, w.Time = w2.V, w2.Time
	}
	switch {
	case w.V == nil:
		return nil, fmt.Errorf("%w: no version (\"v\")", ErrInvalidEntry)
	case *w.V != *peek.V:
		return nil, fmt.Errorf("%w: version %d, then %d", ErrInvalidEntry, *peek.V, *w.V)
	case w.Time == nil:
		return nil, fmt.Errorf("%w: no time", ErrInvalidEntry)
	}
	t, err := time.Parse(TimeLayout, *w.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time %q is not RFC 3339 UTC with microseconds", ErrInvalidEntry, *w.Time)
	}
	e.Time = t
	if *w.V != EntryVersion {
		e.Version = *w.V
	}
	again, err := oracleEncode(e)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form (field order, spacing, escapes or empty fields)", ErrInvalidEntry)
	}
	return e, nil
}

func oracleInvalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEntry}, args...)...)
}

func oracleValidate(e *Entry) error {
	if e.Version < 0 || e.Version > 2 {
		return oracleInvalidf("version %d", e.Version)
	}
	if e.Time.IsZero() {
		return oracleInvalidf("no time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return oracleInvalidf("time %v out of range", e.Time)
	}
	if !e.Kind.valid() {
		return oracleInvalidf("unknown kind %q", e.Kind)
	}
	if e.Kind.isAccess() {
		if e.Actor == nil {
			return oracleInvalidf("kind %q needs an actor", e.Kind)
		}
		if e.Decision == "" {
			return oracleInvalidf("kind %q needs a decision", e.Kind)
		}
		if e.Action == "" {
			return oracleInvalidf("kind %q needs an action", e.Kind)
		}
	}
	if e.Decision != "" && e.Decision != Allow && e.Decision != Deny {
		return oracleInvalidf("decision %q is neither %q nor %q", e.Decision, Allow, Deny)
	}
	if e.Actor != nil && (e.Actor.Sub == "" || e.Actor.Type == "") {
		return oracleInvalidf("actor needs sub and type")
	}
	if e.Kind.needsSubject() && e.Subject == "" {
		return oracleInvalidf("kind %q needs a subject", e.Kind)
	}
	if e.Subject != "" && !isPseudonym(e.Subject) {
		return oracleInvalidf("subject must be a pseudonym: 64 lower-case hex digits")
	}
	for i, f := range e.Fields {
		if f.Name == "" || f.Form == "" {
			return oracleInvalidf("field %d needs a name and a form", i)
		}
	}
	if e.Kind == KindPolicy && (e.Policy == nil || e.Policy.Digest == "") {
		return oracleInvalidf("kind %q needs a policy digest", e.Kind)
	}
	if e.Policy != nil && e.Policy.Digest == "" {
		return oracleInvalidf("policy needs a digest")
	}
	if e.Transfer != nil && e.Kind != KindTransfer {
		return oracleInvalidf("transfer only in kind %q", KindTransfer)
	}
	if t := e.Transfer; t != nil && (t.Destination == "" || t.Rows < 0 || t.Suppressed < 0 || t.Bytes < 0) {
		return oracleInvalidf("transfer needs a destination and non-negative counts")
	}
	if len(e.PolicyFiles) > 0 && e.Kind != KindPolicy {
		return oracleInvalidf("policy_files only in kind %q", KindPolicy)
	}
	for i, f := range e.PolicyFiles {
		if f.Name == "" {
			return oracleInvalidf("policy file %d needs a name", i)
		}
	}
	if len(e.Schema) > 0 && e.Kind != KindPolicy {
		return oracleInvalidf("schema only in kind %q", KindPolicy)
	}
	for i, f := range e.Schema {
		if f.Name == "" || f.Type == "" || f.Category == "" || f.Method == "" {
			return oracleInvalidf("schema field %d needs a name, type, category and method", i)
		}
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return oracleInvalidf("status %d is not an HTTP status", e.Status)
	}
	if c := e.Context; c != nil {
		if c.Hour < 0 || c.Hour > 23 {
			return oracleInvalidf("context hour %d out of range", c.Hour)
		}
		switch c.Weekday {
		case "", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		default:
			return oracleInvalidf("context weekday %q is not Mon..Sun", c.Weekday)
		}
	}
	if !oracleValidUTF8(e) {
		return oracleInvalidf("a string is not valid UTF-8")
	}
	return nil
}

func oracleValidUTF8(e *Entry) bool {
	ok := true
	check := func(ss ...string) {
		for _, s := range ss {
			ok = ok && utf8.ValidString(s)
		}
	}
	check(e.RequestID, string(e.Kind), e.Site, e.Action, e.Subject, string(e.Decision),
		e.Purpose, e.Justification, e.Grant, e.Detail)
	if a := e.Actor; a != nil {
		check(a.Sub, a.Type, a.Country, a.Team)
		check(a.Roles...)
	}
	for _, f := range e.Fields {
		check(f.Name, f.Form)
		check(f.Policies...)
	}
	if c := e.Context; c != nil {
		check(c.SubjectCountry, c.SubjectJurisdiction, c.SubjectSite, c.Weekday)
	}
	if p := e.Policy; p != nil {
		check(p.Digest)
		check(p.IDs...)
	}
	for _, f := range e.PolicyFiles {
		check(f.Name, f.Text)
	}
	for _, f := range e.Schema {
		check(f.Name, f.Type, f.Category, f.Method)
	}
	if t := e.Transfer; t != nil {
		check(t.Destination, t.Country, t.LegalBasis, t.Format, t.SHA256)
	}
	return ok
}

// decoded is what Decode should return for e: the same entry, its time in
// UTC to the microsecond.
func decoded(e *Entry) *Entry {
	d := *e
	d.Time = e.Time.UTC().Truncate(time.Microsecond)
	return &d
}

// TestEncodeGoldenBytes checks that the canonical bytes of entries of every
// kind, with every awkward character, are those the logs hold, in each
// version, and that Decode reads them back.
func TestEncodeGoldenBytes(t *testing.T) {
	for version, encodings := range map[int][]string{1: goldenEncodings, 2: goldenEncodingsV2} {
		entries := goldenEntries()
		if len(entries) != len(encodings) {
			t.Fatalf("version %d: %d golden entries, %d encodings", version, len(entries), len(encodings))
		}
		for i, e := range entries {
			if version < EntryVersion {
				e.Version = version
			}
			want := encodings[i]
			got, err := Encode(e)
			if err != nil {
				t.Errorf("version %d, entry %d: Encode: %v", version, i, err)
				continue
			}
			if string(got) != want {
				t.Errorf("version %d, entry %d: Encode:\n got %q\nwant %q", version, i, got, want)
			}
			d, err := Decode([]byte(want))
			if err != nil {
				t.Errorf("version %d, entry %d: Decode: %v", version, i, err)
				continue
			}
			if diff := cmp.Diff(decoded(e), d); diff != "" {
				t.Errorf("version %d, entry %d: Decode (-want +got):\n%s", version, i, diff)
			}
		}
	}
}

// groupedEntry is a read whose fields group in every way: a run of three,
// no policies and an empty list alike, the same form under other policies
// apart, and a form that comes back after another apart.
func groupedEntry() *Entry {
	e := readEntry()
	e.Fields = []Field{
		{Name: "a", Form: "raw", Policies: []string{"p"}},
		{Name: "b", Form: "raw", Policies: []string{"p"}},
		{Name: "c", Form: "raw", Policies: []string{"p"}},
		{Name: "d", Form: "raw", Policies: []string{"p", "q"}},
		{Name: "e", Form: "masked"},
		{Name: "f", Form: "masked", Policies: []string{}},
		{Name: "g", Form: "raw", Policies: []string{"p"}},
	}
	return e
}

// TestFieldGroups pins how version 2 groups fields, and that Decode gives
// them back one by one.
func TestFieldGroups(t *testing.T) {
	e := groupedEntry()
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `"fields":[{"names":["a","b","c"],"form":"raw","policies":["p"]},` +
		`{"names":["d"],"form":"raw","policies":["p","q"]},` +
		`{"names":["e","f"],"form":"masked"},` +
		`{"names":["g"],"form":"raw","policies":["p"]}],"purpose"`
	if !strings.Contains(string(b), want) || !strings.HasPrefix(string(b), `{"v":2,`) {
		t.Fatalf("Encode = %s\nwant it to hold %s", b, want)
	}
	checkEncodeMatchesOracle(t, e)
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := slices.Clone(e.Fields)
	wantFields[5].Policies = nil // grouped with e's, which has none
	if diff := cmp.Diff(wantFields, d.Fields); diff != "" {
		t.Errorf("Decode: fields (-want +got):\n%s", diff)
	}
	// Version 1 of the same entry: an object per field, read back alike.
	b1, err := Encode(v1(e))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b1), `{"name":`); n != len(e.Fields) || !strings.HasPrefix(string(b1), `{"v":1,`) {
		t.Fatalf("Encode(version 1) = %s: %d field objects, want %d", b1, n, len(e.Fields))
	}
	if len(b) >= len(b1) {
		t.Errorf("version 2 is %d bytes, version 1 %d", len(b), len(b1))
	}
	d1, err := Decode(b1)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Version != 1 {
		t.Errorf("Decode(version 1).Version = %d, want 1", d1.Version)
	}
	if again, err := Encode(d1); err != nil || !bytes.Equal(again, b1) {
		t.Errorf("Encode(Decode(version 1)) = %s, %v; want the version 1 bytes", again, err)
	}
}

// TestDecodeRejectsNonCanonicalGroups checks that version 2 accepts only
// groups as Encode writes them.
func TestDecodeRejectsNonCanonicalGroups(t *testing.T) {
	good, err := Encode(groupedEntry())
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for name, in := range map[string]string{
		"run split":             strings.Replace(s, `["a","b","c"],"form":"raw","policies":["p"]}`, `["a"],"form":"raw","policies":["p"]},{"names":["b","c"],"form":"raw","policies":["p"]}`, 1),
		"empty names":           strings.Replace(s, `{"names":["d"]`, `{"names":[]`, 1),
		"null names":            strings.Replace(s, `{"names":["d"]`, `{"names":null`, 1),
		"no names":              strings.Replace(s, `{"names":["d"],`, `{`, 1),
		"no form":               strings.Replace(s, `["e","f"],"form":"masked"`, `["e","f"]`, 1),
		"empty policies":        strings.Replace(s, `["e","f"],"form":"masked"`, `["e","f"],"form":"masked","policies":[]`, 1),
		"empty name":            strings.Replace(s, `["e","f"]`, `["e",""]`, 1),
		"version 1 field":       strings.Replace(s, `{"names":["g"]`, `{"name":"g"`, 1),
		"name and names":        strings.Replace(s, `{"names":["g"]`, `{"name":"g","names":["g"]`, 1),
		"key order":             strings.Replace(s, `{"names":["g"],"form":"raw"`, `{"form":"raw","names":["g"]`, 1),
		"unknown group key":     strings.Replace(s, `"form":"masked"`, `"form":"masked","x":1`, 1),
		"names not an array":    strings.Replace(s, `{"names":["d"]`, `{"names":"d"`, 1),
		"version 1 with groups": strings.Replace(s, `"v":2`, `"v":1`, 1),
	} {
		if in == s {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: Decode = %v, want ErrInvalidEntry", name, err)
		}
		checkDecodeMatchesOracle(t, []byte(in))
	}
}

// oracleEntries are the entries the oracle comparisons start from: the
// golden ones, the benchmark ones (the default policy set included) and
// one whose fields group in every way.
func oracleEntries(tb testing.TB) []*Entry {
	entries := append(goldenEntries(), groupedEntry())
	for _, c := range benchEntries(tb) {
		entries = append(entries, c.entry)
	}
	return entries
}

// oracleInputs are the encodings of oracleEntries in every version.
func oracleInputs(tb testing.TB) [][]byte {
	var inputs [][]byte
	for _, e := range oracleEntries(tb) {
		for _, e := range []*Entry{e, v1(e)} {
			b, err := oracleEncode(e)
			if err != nil {
				tb.Fatal(err)
			}
			inputs = append(inputs, b)
		}
	}
	return inputs
}

// checkEncodeMatchesOracle checks that Encode and the oracle agree on e:
// the same bytes, or both an error matching the same sentinel.
func checkEncodeMatchesOracle(t testing.TB, e *Entry) {
	t.Helper()
	got, err := Encode(e)
	want, oerr := oracleEncode(e)
	switch {
	case (err == nil) != (oerr == nil):
		t.Fatalf("Encode: error %v, oracle: error %v", err, oerr)
	case err != nil:
		for _, sentinel := range []error{ErrInvalidEntry, ErrEntryTooLarge} {
			if errors.Is(err, sentinel) != errors.Is(oerr, sentinel) {
				t.Fatalf("Encode: error %v, oracle: error %v", err, oerr)
			}
		}
	case !bytes.Equal(got, want):
		t.Fatalf("Encode:\n got %q\nwant %q", got, want)
	}
}

// checkDecodeMatchesOracle checks that Decode and the oracle agree on b:
// both refuse it, or both accept it as the same entry. The oracle's
// refusals match ErrInvalidEntry or, for an input that grows when encoded
// again past MaxEntrySize, ErrEntryTooLarge; Decode's always match
// ErrInvalidEntry, as documented.
func checkDecodeMatchesOracle(t testing.TB, b []byte) {
	t.Helper()
	got, err := Decode(b)
	want, oerr := oracleDecode(b)
	switch {
	case (err == nil) != (oerr == nil):
		t.Fatalf("Decode(%q): error %v, oracle: error %v", b, err, oerr)
	case err != nil:
		if !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("Decode(%q) = %v, want ErrInvalidEntry", b, err)
		}
	default:
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Decode(%q) (-oracle +got):\n%s", b, diff)
		}
	}
}

func TestEncodeMatchesOracle(t *testing.T) {
	for i, e := range oracleEntries(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkEncodeMatchesOracle(t, e) })
		t.Run(fmt.Sprint(i, "-v1"), func(t *testing.T) { checkEncodeMatchesOracle(t, v1(e)) })
	}
	// Invalid entries: refused alike.
	for i, mutate := range []func(e *Entry){
		func(e *Entry) { e.Time = time.Time{} },
		func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		func(e *Entry) { e.Kind = "" },
		func(e *Entry) { e.Actor = nil },
		func(e *Entry) { e.Actor.Type = "" },
		func(e *Entry) { e.Decision = "maybe" },
		func(e *Entry) { e.Subject = strings.ToUpper(e.Subject) },
		func(e *Entry) { e.Fields[1].Form = "" },
		func(e *Entry) { e.Context.Hour = -1 },
		func(e *Entry) { e.Context.Weekday = "mon" },
		func(e *Entry) { e.Policy.Digest = "" },
		func(e *Entry) { e.Status = 600 },
		func(e *Entry) { e.Fields[0].Policies = []string{"ok", "\xc3"} },
		func(e *Entry) { e.Actor.Roles = []string{"\xed\xa0\x80"} }, // a surrogate in UTF-8
		func(e *Entry) { e.Detail = strings.Repeat("\u2028", MaxEntrySize/4) },
		func(e *Entry) { e.Detail = strings.Repeat("\x01", MaxEntrySize/5) },
		func(e *Entry) { e.Version = 3 },
		func(e *Entry) { e.Version = -1 },
	} {
		e := readEntry()
		mutate(e)
		t.Run(fmt.Sprint("invalid-", i), func(t *testing.T) { checkEncodeMatchesOracle(t, e) })
		if e.Version == 0 {
			t.Run(fmt.Sprint("invalid-v1-", i), func(t *testing.T) { checkEncodeMatchesOracle(t, v1(e)) })
		}
	}
}

// TestDecodeMatchesOracle checks Decode against the oracle on the golden
// encodings and on many deterministic mutations of each: bytes flipped,
// deleted, inserted or duplicated, and replacements that keep the JSON
// well formed but not canonical.
func TestDecodeMatchesOracle(t *testing.T) {
	inputs := oracleInputs(t)
	for _, b := range inputs {
		checkDecodeMatchesOracle(t, b)
	}
	replacements := [][2]string{
		{`"v":1`, `"v":01`}, {`"v":1`, `"v":-1`}, {`"v":1`, `"v":1e0`}, {`"v":1`, `"v":true`},
		{`"v":1`, `"v":18446744073709551617`}, {`"v":1`, `"V":1`}, {`,`, ` ,`}, {`:`, `: `},
		{`"status":200`, `"status":200.0`}, {`"status":200`, `"status":-0`}, {`"status":200`, `"status":null`},
		{`"hour":5`, `"hour":05`}, {`"hour":0`, `"hour":-0`}, {`"hour":5`, `"hour":"5"`},
		{`true`, `True`}, {`false`, `null`}, {`\u001b`, `\u001B`}, {`\u001f`, `\u001F`},
		{`\n`, `\u000a`}, {`\t`, `\u0009`}, {`\"`, `\u0022`}, {`\\`, `\u005c`}, {`\u2028`, "\u2028"},
		{`\u2029`, "\u2029"}, {"é", `\u00e9`}, {"/", `\/`}, {"<", `\u003c`}, {`&`, `\u0026`},
		{"\x7f", `\u007f`}, {"\ufffd", "\xff"}, {`"decided":7`, `"decided":18446744073709551615`},
		{`"decided":7`, `"decided":18446744073709551616`}, {`"bytes":9223372036854775807`, `"bytes":9223372036854775808`},
		{`"roles":["support"`, `"roles":[]`}, {`"ids":[`, `"ids":null,"x":[`}, {`"kind":"decision"`, `"kind":"decision","kind":"decision"`},
		{`"team":"t1"`, `"team":"t1","team":"t1"`}, {`}`, `} `}, {`{"v"`, ` {"v"`}, {`"context":{"subject_country":"FR",`, `"context":{`},
		{`"caller_in_jurisdiction":true`, `"caller_in_jurisdiction":false`}, {`"weekday":"Wed"`, `"weekday":"Wed","hour":5`},
		{`"2026-03-04T05:06:07.123456Z"`, `"2026-03-04T05:06:07.1234560Z"`}, {`"2026-03-04T05:06:07.123456Z"`, `"2026-02-30T05:06:07.123456Z"`},
		{`07.123456Z`, `60.123456Z`}, {`T05`, `T24`}, {`T05`, `t05`}, {`"time":"2026`, `"time":"0000`},
		{`"v":2`, `"v":1`}, {`"v":1`, `"v":2`}, {`"v":2`, `"v":3`}, {`"names":[`, `"name":[`}, {`"name":`, `"names":`},
		{`"],"form"`, `",""],"form"`}, {`{"names":["`, `{"names":[],"x":["`}, {`"],"form":"raw"`, `"],"form":"masked"`},
		{`"policies":["p"]},{"names":[`, `"policies":["p"]},{"names":["a",`},
	}
	for _, b := range inputs {
		for _, r := range replacements {
			for n := 1; n <= 2; n++ {
				if m := bytes.Replace(b, []byte(r[0]), []byte(r[1]), n); !bytes.Equal(m, b) {
					checkDecodeMatchesOracle(t, m)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range inputs {
		for range 300 {
			checkDecodeMatchesOracle(t, mutate(rng, b))
		}
	}
}

// mutate returns b changed at random in one to three places.
func mutate(rng *rand.Rand, b []byte) []byte {
	m := bytes.Clone(b)
	const interesting = "\"\\{}[],:0123456789-.eEtrufalsn \x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff"
	for range 1 + rng.IntN(3) {
		if len(m) == 0 {
			break
		}
		i := rng.IntN(len(m))
		switch rng.IntN(5) {
		case 0: // flip a bit
			m[i] ^= 1 << rng.IntN(8)
		case 1: // delete a byte
			m = slices.Delete(m, i, i+1)
		case 2: // insert a byte that matters to JSON
			m = slices.Insert(m, i, interesting[rng.IntN(len(interesting))])
		case 3: // replace a byte with one that matters
			m[i] = interesting[rng.IntN(len(interesting))]
		case 4: // duplicate a short run
			j := min(len(m), i+1+rng.IntN(16))
			m = slices.Insert(m, j, m[i:j]...)
		}
	}
	return m
}

// FuzzDecodeMatchesOracle compares Decode with the encoding/json-based
// oracle on arbitrary inputs: the same accept/reject decision and the same
// entry.
func FuzzDecodeMatchesOracle(f *testing.F) {
	for _, b := range oracleInputs(f) {
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeMatchesOracle(t, b) })
}

// FuzzEncodeMatchesOracle compares Encode with the oracle on entries made
// of arbitrary strings and numbers: the same bytes (so the same escaping)
// or the same refusal.
func FuzzEncodeMatchesOracle(f *testing.F) {
	f.Add(awkward, "\u2029\xff", int64(200), uint64(3), true)
	f.Add("", "x", int64(0), uint64(0), false)
	f.Add("a\x00b", "\xed\xa0\x80", int64(-1), uint64(1<<63), true)
	f.Fuzz(func(t *testing.T, s1, s2 string, n int64, u uint64, flag bool) {
		e := readEntry()
		e.Time = time.Unix(n, int64(u%1e9))
		e.RequestID, e.Purpose, e.Detail = s1, s2, s1+s2
		e.Actor.Roles = []string{s1, s2}
		e.Fields[0].Policies = []string{s2}
		if u%3 == 0 { // a run of fields with the same form and policies
			e.Fields[1].Form, e.Fields[1].Policies = e.Fields[0].Form, []string{s2}
		}
		e.Context.SubjectSite, e.Context.CallerInJurisdiction, e.Context.Hour = s1, flag, int(u%25)
		e.Status = int(n % 700)
		if flag {
			e.Kind, e.Subject, e.Fields, e.Context = KindTransfer, "", nil, nil
			e.Transfer = &TransferRecord{Destination: s1, Country: s2, Rows: int(n), Bytes: n, Decided: &u}
		}
		for _, e := range []*Entry{e, v1(e)} {
			checkEncodeMatchesOracle(t, e)
			b, err := Encode(e)
			if err != nil {
				return
			}
			checkDecodeMatchesOracle(t, b)
		}
	})
}

// TestDecodeErrors checks that Decode says what is wrong.
func TestDecodeErrors(t *testing.T) {
	good, err := Encode(v1(readEntry()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for _, c := range []struct{ in, want string }{
		{strings.Replace(s, `"v":1,`, `"v":1,"x":1,`, 1), `unknown field "x"`},
		{strings.Replace(s, `"kind":"decision"`, `"kind":"decision","kind":"decision"`, 1), `field "kind" repeated or out of order`},
		{strings.Replace(s, `"roles":["support"]`, `"roles":[]`, 1), `empty array`},
		{strings.Replace(s, `"read"`, `"\u0072ead"`, 1), `escape "\\u0072" is not the canonical one`},
		{strings.Replace(s, `"v":1`, `"v":3`, 1), `version 3, want 1 to 2`},
		{strings.Replace(s, `"v":1`, `"v":2`, 1), `unknown field "name"`},
		{strings.Replace(s, `"v":1,`, ``, 1), `no version`},
		{strings.Replace(s, `"hour":5`, `"hour":05`, 1), `leading zero`},
		{strings.Replace(s, `"v":1`, `"v":1.0`, 1), `want an integer`},
		{strings.Replace(s, `"status":200`, `"status":99999999999999999999`, 1), `out of range`},
		{strings.Replace(s, `"support"`, "\"a\x01\"", 1), `control character`},
		{strings.Replace(s, `"support"`, "\"\xff\"", 1), `invalid UTF-8`},
		{strings.Replace(s, `07.123456Z`, `07Z`, 1), `is not RFC 3339`},
		{strings.Replace(s, `"purpose":"support"`, `"purpose":""`, 1), `not in canonical form`},
		{s + " ", `data after the entry`},
		{s[:strings.Index(s, "eu-west")+3], `unterminated string`},
	} {
		_, err := Decode([]byte(c.in))
		if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%.60q...) = %v, want ErrInvalidEntry saying %q", c.in, err, c.want)
		}
	}
}

// TestDecodeCopiesInput checks that the entry Decode returns does not
// change when the caller reuses the input buffer.
func TestDecodeCopiesInput(t *testing.T) {
	b, err := Encode(readEntry())
	if err != nil {
		t.Fatal(err)
	}
	e, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if diff := cmp.Diff(decoded(readEntry()), e); diff != "" {
		t.Errorf("entry changed with the input (-want +got):\n%s", diff)
	}
}

// TestDecodeAllocs pins the allocations of Decode and Encode for a typical
// read, so that a change that loses them fails here, not in production.
func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("allocation counts differ under -cover")
	}
	e := benchDecision()
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { Encode(e) }); n > 1 {
		t.Errorf("Encode: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { Decode(b) }); n > 5 {
		t.Errorf("Decode: %v allocations, want at most 5", n)
	}
}

// TestPlainLen checks the eight-bytes-at-a-time scan against a byte loop,
// with every special byte at every offset of a 20-byte string.
func TestPlainLen(t *testing.T) {
	naive := func(s string) int {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < ' ' || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				return i
			}
		}
		return len(s)
	}
	base := []byte("abcdefghijklmnopqrst")
	for _, special := range []byte{0, 0x1f, '"', '\\', 0x80, 0xff, ' ' - 1} {
		for _, plain := range []byte{' ', '!', '#', '[', ']', 0x7f, '~'} {
			for i := range base {
				s := bytes.Clone(base)
				s[(i+3)%len(s)] = plain
				s[i] = special
				if got, want := plainLen(string(s)), naive(string(s)); got != want {
					t.Errorf("plainLen(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
	if n := plainLen(string(base)); n != len(base) {
		t.Errorf("plainLen(%q) = %d, want %d", base, n, len(base))
	}
}

// TestKeysMatchStructs checks that the decoder's key tables name every
// field of the entry types, in order: a field added to a type but not to
// appendEntry and the decoder fails here.
func TestKeysMatchStructs(t *testing.T) {
	tags := func(v any) []string {
		var names []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name != "-" {
				names = append(names, name)
			}
		}
		return names
	}
	for _, c := range []struct {
		v    any
		keys []string
	}{
		{Entry{}, entryKeys[2:]}, {Actor{}, actorKeys}, {Field{}, fieldKeys}, {RequestContext{}, contextKeys},
		{PolicyRef{}, policyKeys}, {PolicyFile{}, fileKeys}, {SchemaField{}, schemaKeys}, {TransferRecord{}, transferKeys},
	} {
		if diff := cmp.Diff(tags(c.v), c.keys); diff != "" {
			t.Errorf("%T: keys differ from the JSON tags (-tags +keys):\n%s", c.v, diff)
		}
	}
	if !slices.Equal(entryKeys[:2], []string{"v", "time"}) {
		t.Errorf("entry keys start with %q, want v and time", entryKeys[:2])
	}
}
