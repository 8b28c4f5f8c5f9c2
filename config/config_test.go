package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "---\n"} {
		c, err := Parse([]byte(in), "c.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if diff := cmp.Diff(Default(), c); diff != "" {
			t.Errorf("Parse(%q) differs from Default (-want +got):\n%s", in, diff)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	out, err := Default().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "printed.yaml")
	if err != nil {
		t.Fatalf("printed configuration does not parse: %v\n%s", err, out)
	}
	if diff := cmp.Diff(Default(), back); diff != "" {
		t.Errorf("round trip differs (-want +got):\n%s", diff)
	}
}

func TestOverrides(t *testing.T) {
	in := `
data: /var/lib/clover
server:
  listen: 0.0.0.0:8080
enclave:
  sites:
    - name: ie-dublin
      country: IE
      replica: ie-cork
    - name: ie-cork
      country: IE
      storage:
        postgres: postgres://clover:secret@db.internal:5432/clover
    - name: no-hamar
      country: "NO"
`
	c, err := Parse([]byte(in), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/var/lib/clover" || c.Server.Listen != "0.0.0.0:8080" || c.Server.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("unexpected server settings: %+v data %q", c.Server, c.Data)
	}
	if len(c.Enclave.Sites) != 3 || c.Enclave.Sites[0].Replica != "ie-cork" || c.Enclave.Name != "eu" {
		t.Errorf("unexpected enclave: %+v", c.Enclave)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "secret") {
		t.Errorf("printed configuration shows the database password:\n%s", out)
	}
	if !strings.Contains(string(out), "REDACTED") {
		t.Errorf("printed configuration does not mark the redacted password:\n%s", out)
	}
}

// TestJournalSyncInterval reads the interval as a Go duration and prints it
// back as one, so that `config print` output parses to the same value.
func TestJournalSyncInterval(t *testing.T) {
	c, err := Parse([]byte("audit_log:\n  journal_sync_interval: 5ms\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditLog.JournalSyncInterval != 5*time.Millisecond {
		t.Fatalf("JournalSyncInterval = %v, want 5ms", c.AuditLog.JournalSyncInterval)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "journal_sync_interval: 5ms") {
		t.Errorf("printed configuration lacks the interval as a duration:\n%s", out)
	}
	back, err := Parse(out, "printed.yaml")
	if err != nil || back.AuditLog.JournalSyncInterval != 5*time.Millisecond {
		t.Fatalf("printed interval parses back as %v, %v", back.AuditLog.JournalSyncInterval, err)
	}
}

func TestParseErrorsNameFileLineAndKey(t *testing.T) {
	cases := map[string]struct {
		in   string
		want string
	}{
		"unknown key": {"server:\n  listen: 127.0.0.1:1\n  lisen: x\n", `c.yaml:3: unknown key "lisen"`},
		"unknown top": {"data: x\nenclaves: {}\n", `c.yaml:2: unknown key "enclaves"`},
		"wrong type":  {"server:\n  max_body_bytes: lots\n", `c.yaml:2: wrong type`},
		"syntax":      {"server:\n  listen: [\n", `c.yaml:`},
		"duplicate":   {"data: a\ndata: b\n", `c.yaml:2:`},
		"two docs":    {"data: a\n---\ndata: b\n", `more than one YAML document`},
		"bad site": {"enclave:\n  sites:\n    - name: ie-dublin\n      country: IE\n    - name: us-east\n      country: US\n",
			`c.yaml:6: enclave.sites[1].country: site "us-east" is in US, outside`},
		"bad default": {"enclave:\n  default_site: nowhere\n", `c.yaml:2: enclave.default_site: unknown site "nowhere"`},
		"bad schema": {"schema:\n  - name: email\n    type: emial\n    category: contact\n    method: hmac\n",
			`c.yaml:3: schema[0].type: unknown type "emial"`},
		"two identities": {"identity:\n  jwks_file: /etc/jwks.json\n", `c.yaml:1: identity: set exactly one`},
		"bad dsn": {"enclave:\n  sites:\n    - name: ie-dublin\n      country: IE\n      storage: {postgres: 'mysql://x'}\n    - name: no-hamar\n      country: 'NO'\n",
			`enclave.sites[0].storage.postgres: must be a URL`},
		"bad log format": {"server:\n  log_format: xml\n", `c.yaml:2: server.log_format`},
		"no purposes":    {"policy:\n  purposes: []\n", `c.yaml:2: policy.purposes: at least one`},
		"transfer without basis": {"transfers:\n  destinations:\n    - name: us-crm\n      country: US\n      legal_basis: adequacy\n      allow: [{categories: [behavioural], form: pseudonym}]\n      k: 5\n",
			`c.yaml:5: transfers.destinations[0].legal_basis: US has no EU adequacy decision`},
		"bad purpose": {"policy:\n  purposes:\n    - support\n    - Ad Targeting\n", `c.yaml:4: policy.purposes[1]: "Ad Targeting"`},
		"witness url": {"audit_log:\n  witnesses:\n    - name: monitor\n      url: ftp://m.example\n      key: m+00000000+AQ==\n",
			`c.yaml:4: audit_log.witnesses[0].url: URL "ftp://m.example" is not an http(s) URL`},
		"witness key": {"audit_log:\n  witnesses:\n    - name: monitor\n      url: http://m.example\n      key: nonsense\n",
			`c.yaml:5: audit_log.witnesses[0].key: key is not a cosignature/v1 verifier key`},
		"small segments": {"audit_log:\n  journal_segment_bytes: 1000\n", `c.yaml:2: audit_log.journal_segment_bytes: 1000 is below the minimum`},
		"negative keep":  {"audit_log:\n  journal_keep_segments: -1\n", `c.yaml:2: audit_log.journal_keep_segments: -1 must not be negative`},
		"sync interval":  {"audit_log:\n  journal_sync_interval: 1s\n", `c.yaml:2: audit_log.journal_sync_interval: 1s is outside 0..50ms (0 means the default, 2ms)`},
		"sync negative":  {"audit_log:\n  journal_sync_interval: -1ms\n", `c.yaml:2: audit_log.journal_sync_interval: -1ms is outside 0..50ms (0 means the default, 2ms)`},
		"sync not time":  {"audit_log:\n  journal_sync_interval: soon\n", `c.yaml:2`},
		"witness quorum": {"audit_log:\n  witness_quorum: 2\n", `c.yaml:2: audit_log.witness_quorum: 2 is outside 0..0`},
		"dup purpose":    {"policy:\n  purposes: [support, support]\n", `policy.purposes[1]: purpose "support" is listed twice`},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.in), "c.yaml")
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", name, err, c.want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	_, err := Parse(make([]byte, MaxFileBytes+1), "big.yaml")
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func FuzzParse(f *testing.F) {
	out, _ := Default().Marshal()
	f.Add(out)
	f.Add([]byte("server:\n  listen: 127.0.0.1:1\n"))
	f.Add([]byte("enclave: {sites: [{name: a, country: IE}], default_site: a, placement: []}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("schema: [{name: x, type: date, category: identity, method: year}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a configuration with an error")
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid configuration: %v", err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out, "printed.yaml")
		if err != nil {
			t.Fatalf("printed configuration does not parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(c, back, cmpopts.EquateEmpty()); diff != "" && !strings.Contains(string(out), "REDACTED") {
			t.Fatalf("round trip differs (-want +got):\n%s", diff)
		}
	})
}
