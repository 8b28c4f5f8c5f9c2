package monitor

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The defaults alone cannot run: there is no log to follow.
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "--log") {
		t.Fatalf("Ready() = %v, want the missing log named", err)
	}
	c.Log.URL, c.Log.Key = "http://127.0.0.1:7400/log/", "clover/eu+01234567+AQ=="
	if err := c.Ready(); err != nil {
		t.Fatal(err)
	}
	c.Canary.TokenFile = "canary.jwt"
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "gateway") {
		t.Fatalf("a canary without a gateway: Ready() = %v", err)
	}
}

func TestConfigErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"unknown key":   {"log:\n  url: http://x/log/\n  pol_interval: 1s\n", `m.yaml:3: unknown key "pol_interval"`},
		"wrong type":    {"log:\n  poll_interval: often\n", `m.yaml:2:`},
		"bad log url":   {"log:\n  url: ftp://x/log/\n", `m.yaml:2: log.url: "ftp://x/log/" is not an http(s) URL`},
		"poll too fast": {"log:\n  poll_interval: 1ms\n", `m.yaml:2: log.poll_interval: 1ms is outside 50ms..1h`},
		"bad name":      {"name: 'monitor one'\n", `m.yaml:1: name:`},
		"bad listen":    {"listen: 7401\n", `m.yaml:1: listen: "7401" is not host:port`},
		"canary every":  {"canary:\n  every: 10ms\n", `m.yaml:2: canary.every`},
		"canary subj":   {"canary:\n  subject: a/b\n", `m.yaml:2: canary.subject`},
		"bad rule": {"rules:\n  - name: bulk\n    severity: high\n    reidentify: {}\n  - name: odd\n    severity: dire\n    reidentify: {}\n",
			`m.yaml:5: rules[1]: rule "odd": severity: "dire"`},
		"rule without parameters": {"rules:\n  - name: bulk\n    severity: high\n", `m.yaml:2: rules[0]: rule "bulk": no rule parameters`},
		"duplicate rule": {"rules:\n  - {name: a, severity: low, reidentify: {}}\n  - {name: a, severity: low, reidentify: {}}\n",
			`m.yaml:1: rules: rule "a": name: used by another rule`},
		"webhook url": {"webhooks:\n  - name: soc\n    url: mailto:soc@example.org\n    secret_file: s\n",
			`m.yaml:3: webhooks[0].url: "mailto:soc@example.org" is not an http(s) URL`},
		"webhook secret": {"webhooks:\n  - name: soc\n    url: https://soc.example/hook\n", `m.yaml:2: webhooks[0].secret_file`},
		"webhook twice": {"webhooks:\n  - {name: soc, url: 'https://a.example/', secret_file: s}\n  - {name: soc, url: 'https://b.example/', secret_file: s}\n",
			`m.yaml:3: webhooks[1].name`},
		"two documents": {"name: a\n---\nname: b\n", `more than one YAML document`},
	}
	for name, c := range cases {
		_, err := ParseConfig([]byte(c.in), "m.yaml")
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", name, err, c.want)
		}
	}
}

func TestConfigParsesEverything(t *testing.T) {
	in := `name: monitor.auditor.example
data: /var/lib/clover-monitor
listen: 0.0.0.0:7401
log:
  url: https://clover.example/log/
  key: clover/eu+01234567+AQ==
  poll_interval: 250ms
  require_cosignature: true
gateway:
  url: https://clover.example
canary:
  token_file: canary.jwt
  every: 30s
  timeout: 20s
  subject: canary-1
  fields: email,phone
  purpose: support
rules:
  - name: bulk
    severity: high
    bulk_access: {subjects: 20, window: 2m}
webhooks:
  - name: soc
    url: https://soc.example/hook
    secret_file: soc.secret
`
	c, err := ParseConfig([]byte(in), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.PollInterval.Milliseconds() != 250 || !c.Log.RequireCosignature || c.Canary.Every.Seconds() != 30 ||
		len(c.Rules) != 1 || c.Rules[0].BulkAccess.Subjects != 20 || len(c.Webhooks) != 1 || c.Canary.Fields != "email,phone" {
		t.Fatalf("parsed %+v", c)
	}
	if got := c.Path("canary.jwt"); got != filepath.Join("/var/lib/clover-monitor", "canary.jwt") {
		t.Errorf("Path(relative) = %q, want it in the data directory", got)
	}
	if got := c.Path("/etc/x"); got != "/etc/x" {
		t.Errorf("Path(absolute) = %q", got)
	}
}

func TestOperators(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "operators")
	ops, created, err := loadOrCreateOperators(path)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operators file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	b, _ := os.ReadFile(path)
	var tok string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "admin" {
			tok = f[1]
		}
	}
	req := httptest.NewRequest("GET", "/v1/incidents", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if who, ok := ops.who(req); !ok || who != "admin" {
		t.Fatalf("who(admin's token) = %q %v", who, ok)
	}
	for _, h := range []string{"", "Bearer ", "Bearer " + tok + "x", "Basic " + tok, tok} {
		req.Header.Set("Authorization", h)
		if who, ok := ops.who(req); ok {
			t.Errorf("Authorization %q accepted as %q", h, who)
		}
	}
	// A second load reads the same file.
	if _, created, err := loadOrCreateOperators(path); err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := loadOrCreateOperators(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable operators file: %v", err)
	}
	bad := map[string]string{
		"one field":   "alice\n",
		"short token": "alice short\n",
		"twice":       "alice 0123456789abcdef0\nalice 0123456789abcdef1\n",
		"bad name":    "al!ce 0123456789abcdef0\n",
		"empty":       "# nobody\n",
	}
	for name, in := range bad {
		if _, err := parseOperators([]byte(in), "ops"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	two, err := parseOperators([]byte("alice 0123456789abcdef0\nbob 0123456789abcdef1\n"), "ops")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer 0123456789abcdef1")
	if who, ok := two.who(req); !ok || who != "bob" {
		t.Fatalf("who(bob's token) = %q %v", who, ok)
	}
}

func TestCanarySubject(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t")
	// header {"alg":"none"}, payload {"sub":"canary-1"}
	os.WriteFile(p, []byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYW5hcnktMSJ9.c2ln\n"), 0o600)
	if sub, err := canarySubject(p); err != nil || sub != "canary-1" {
		t.Fatalf("canarySubject = %q, %v", sub, err)
	}
	os.WriteFile(p, []byte("not a token"), 0o600)
	if _, err := canarySubject(p); err == nil {
		t.Fatal("a non-JWT accepted")
	}
	os.Chmod(p, 0o640)
	if _, err := canarySubject(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a group-readable token file: %v", err)
	}
}
