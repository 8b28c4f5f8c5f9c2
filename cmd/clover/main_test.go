package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/config"
)

// clover runs the CLI in-process and returns its exit code and output.
func clover(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := clover(t, "version")
	if code != 0 || out != "clover dev\n" {
		t.Fatalf("version = %d %q", code, out)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{"serve", "--bogus"},
		{"nonsense"},
		{"version", "extra"},
		{"token", "--sub", "x"}, // missing roles and country
		{"token", "--sub", "x", "--roles", "a", "--country", "ireland"}, // bad country
		{"serve", "--config", "/nonexistent/clover.yaml"},
		{"serve", "--log-level", "loud"},
	}
	for _, args := range cases {
		code, _, errOut := clover(t, append(args, "--data", t.TempDir())...)
		if code != 2 {
			t.Errorf("clover %s = exit %d (%s), want 2", strings.Join(args, " "), code, errOut)
		}
		if !strings.HasPrefix(errOut, "clover: ") {
			t.Errorf("clover %s: stderr %q does not start with \"clover: \"", strings.Join(args, " "), errOut)
		}
	}
}

func TestBadConfigNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clover.yaml")
	os.WriteFile(path, []byte("server:\n  listen: 127.0.0.1:0\n  listn: x\n"), 0o600)
	code, _, errOut := clover(t, "config", "print", "--config", path)
	if code != 2 || !strings.Contains(errOut, path+`:3: unknown key "listn"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestConfigPrintIsTheDefault(t *testing.T) {
	code, out, errOut := clover(t, "config", "print")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, _ := config.Default().Marshal()
	if out != string(want) {
		t.Fatalf("config print differs from the default:\n%s", out)
	}
	golden, err := os.ReadFile("testdata/config-print.golden")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(golden) {
		t.Errorf("config print differs from testdata/config-print.golden; if the change is intended, update it with:\n  go run ./cmd/clover config print > cmd/clover/testdata/config-print.golden")
	}
}

func TestTokenMintsAVerifiableToken(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := clover(t, "token", "--data", data, "--sub", "support-ie-1", "--roles", "support, service", "--country", "IE", "--team", "t1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("not a JWS: %q", tok)
	}
	info, err := os.Stat(filepath.Join(data, "dev-issuer", "signing-key.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("dev issuer key: %v %v", info, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeEndToEnd runs the server as `clover serve` would, drives the API
// over HTTP, and stops it with a cancelled context (what SIGTERM does).
func TestServeEndToEnd(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var code int
	var logs bytes.Buffer
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"serve", "--data", data, "--listen", addr, "--log-format", "json"}, io.Discard, &lockedWriter{w: &logs})
	}()
	base := "http://" + addr
	waitUp(t, base+"/healthz")

	token := func(roles string) string {
		_, out, errOut := clover(t, "token", "--data", data, "--sub", "e2e", "--roles", roles, "--country", "IE")
		if errOut != "" {
			t.Fatal(errOut)
		}
		return strings.TrimSpace(out)
	}
	call := func(method, path, tok, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	ingest, service := token("ingest"), token("service")
	if st, m := call("PUT", "/v1/subjects/ola-1", ingest, `{"country":"NO","fields":{"email":"ola.nordmann@example.no"}}`); st != 201 || m["site"] != "no-hamar" {
		t.Fatalf("PUT = %d %v", st, m)
	}
	if st, m := call("GET", "/v1/subjects/ola-1", service, ""); st != 200 || m["fields"].(map[string]any)["email"] != "ola.nordmann@example.no" {
		t.Fatalf("GET = %d %v", st, m)
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, logs.String())
	}
	for _, want := range []string{`"msg":"clover serving"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	for _, secret := range []string{"ola-1", "ola.nordmann"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log mentions %q", secret)
		}
	}
	// The stores were closed cleanly: the data is there for the next start.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx2, []string{"serve", "--data", data, "--listen", addr}, io.Discard, io.Discard)
	}()
	waitUp(t, base+"/healthz")
	if st, _ := call("GET", "/v1/subjects/ola-1", service, ""); st != 200 {
		t.Fatalf("after restart GET = %d", st)
	}
	cancel2()
	wg.Wait()
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", url)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
