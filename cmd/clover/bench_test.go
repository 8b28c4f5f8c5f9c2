package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/synth"
)

// runLoadCmd runs the CLI as main does.
func runLoadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, stdout, stderr)
}

func loadCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runLoadCmd(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestParseMix(t *testing.T) {
	for in, want := range map[string]map[string]int{
		"read=90,write=10": {"read": 90, "write": 10},
		" read = 1 ":       {"read": 1},
		"read=0,write=5,":  {"read": 0, "write": 5},
	} {
		got, err := parseMix(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("parseMix(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "read", "read=x", "read=-1", "read=0", "delete=5", "transfer=5", "read=1,read=2"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) accepted", bad)
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSeedAndBenchUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"seed"},
		{"seed", "--subjects", "10", "--concurrency", "0"},
		{"seed", "--subjects", "10", "--url", "ftp://127.0.0.1"},
		{"seed", "--subjects", "10", "--url", "127.0.0.1:7400"},
		{"bench"},
		{"bench", "--subjects", "10", "-d", "1s", "-n", "5"},
		{"bench", "--subjects", "10", "--mix", "read=x"},
		{"bench", "--subjects", "10", "--mix", "transfer=1"},
		{"bench", "--subjects", "10", "-c", "0"},
		{"bench", "--subjects", "10", "--bogus"},
		{"bench", "--subjects", "10", "--fields", ","},
		{"bench", "--subjects", "10", "--fields", "email,shoe_size"},
		{"bench", "--subjects", "10", "--token", "two words"},
	} {
		if code, _, errOut := loadCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

// startServer runs `clover serve` in-process on a free port.
func startServer(t *testing.T) (data, base string) {
	t.Helper()
	data, addr := t.TempDir(), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(ctx, []string{"serve", "--data", data, "--listen", addr}, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	base = "http://" + addr
	waitUp(t, base+"/healthz")
	return data, base
}

func TestSeedAndBenchEndToEnd(t *testing.T) {
	data, base := startServer(t)
	const n = 150

	code, out, errOut := loadCmd(t, "seed", "--subjects", fmt.Sprint(n), "--seed", "9", "--data", data, "--url", base, "--concurrency", "4")
	if code != 0 {
		t.Fatalf("seed exited %d: %s%s", code, out, errOut)
	}
	outside := 0
	g := synth.New(9)
	for i := 1; i <= n; i++ {
		if !synth.Countries()[g.Country(i)] {
			outside++
		}
	}
	for _, want := range []string{
		fmt.Sprintf("seeded %d subjects (seed 9)", n),
		fmt.Sprintf("written  %10d", n-outside),
		fmt.Sprintf("refused  %10d", outside),
		"errors            0",
		"ie-dublin",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the seed summary lacks %q:\n%s", want, out)
		}
	}

	// Seeding again replaces the records.
	if code, out, errOut := loadCmd(t, "seed", "--subjects", "20", "--seed", "9", "--data", data, "--url", base); code != 0 || !strings.Contains(out, "created 0, replaced") {
		t.Fatalf("reseed exited %d: %s%s", code, out, errOut)
	}

	jsonFile := filepath.Join(t.TempDir(), "bench.json")
	code, out, errOut = loadCmd(t, "bench", "--subjects", fmt.Sprint(n), "--seed", "9", "--data", data, "--url", base,
		"-c", "4", "-n", "400", "--warmup", "0", "--mix", "read=3,write=1", "--json", jsonFile)
	if code != 0 {
		t.Fatalf("bench exited %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"read", "write", "p99.9", "errors: none", "GET /v1/subjects/{id}", "PUT /v1/subjects/{id}", "get_record", "machine:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bench table lacks %q:\n%s", want, out)
		}
	}
	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode  string
		Total struct{ Requests, OK, Errors int64 }
		Ops   []struct {
			Name     string
			Requests int64
		}
		Server struct {
			Routes []struct {
				Route    string
				Requests float64
			}
			Log struct {
				Entries, Syncs float64
				EntriesPerSync float64 `json:"entries_per_sync"`
			}
		}
		Machine struct{ CPUs int }
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "bench" || rep.Total.Requests != 400 || rep.Total.OK != 400 || rep.Total.Errors != 0 || len(rep.Ops) != 2 || rep.Machine.CPUs < 1 {
		t.Errorf("JSON report: %s", raw)
	}
	served := 0.0
	for _, r := range rep.Server.Routes {
		if strings.Contains(r.Route, "/v1/subjects/") {
			served += r.Requests
		}
	}
	if served < 400 {
		t.Errorf("the server counted %v subject requests during the run, want at least 400", served)
	}
	// Every request was logged; the syncs made them durable, at least one each.
	if l := rep.Server.Log; l.Entries < 400 || l.Syncs < 1 || l.Syncs > l.Entries || l.EntriesPerSync != l.Entries/l.Syncs {
		t.Errorf("the report's audit log figures: %+v", l)
	}
	if !strings.Contains(out, "entries durable in") {
		t.Errorf("the bench table lacks the audit log's line:\n%s", out)
	}

	// Reads of some fields only; JSON to stdout, the table to stderr.
	code, out, errOut = loadCmd(t, "bench", "--subjects", fmt.Sprint(n), "--seed", "9", "--data", data, "--url", base,
		"-c", "2", "-n", "50", "--warmup", "0", "--mix", "read=1", "--fields", "email,birth_date", "--json", "-")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(errOut, "reads ask for email,birth_date") {
		t.Fatalf("bench --fields exited %d:\n%s\n%s", code, out, errOut)
	}
}

func TestBenchAndSeedExplainBadTargets(t *testing.T) {
	data, base := startServer(t)
	if code, out, errOut := loadCmd(t, "seed", "--subjects", "30", "--data", data, "--url", base); code != 0 {
		t.Fatalf("seed exited %d: %s%s", code, out, errOut)
	}
	closed := "http://" + freeAddr(t) // nothing listens there
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"seed, refused connection":  {[]string{"seed", "--subjects", "5", "--data", data, "--url", closed}, "cannot reach the server at " + closed},
		"bench, refused connection": {[]string{"bench", "--subjects", "30", "--data", data, "--url", closed}, "is `clover serve` running there?"},
		"seed, bad token":           {[]string{"seed", "--subjects", "5", "--token", "not-a-token", "--url", base}, "rejected the token (401 unauthenticated"},
		"bench, bad token":          {[]string{"bench", "--subjects", "30", "--token", "not-a-token", "--url", base}, "rejected the token (401 unauthenticated"},
		"bench, foreign data dir":   {[]string{"bench", "--subjects", "30", "--data", t.TempDir(), "--url", base}, "rejected the token"},
		"bench, not seeded":         {[]string{"bench", "--subjects", "3000", "--data", data, "--url", base}, "is not on the server"},
		"bench, wrong prefix":       {[]string{"bench", "--subjects", "30", "--data", data, "--url", base + "/nope"}, "404"},
		"seed, wrong prefix":        {[]string{"seed", "--subjects", "5", "--data", data, "--url", base + "/nope"}, "404"},
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := loadCmd(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q (stdout %q); want exit 1 and %q", code, errOut, out, tc.want)
			}
			if strings.Contains(errOut, "goroutine") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("not a one-line message: %q", errOut)
			}
		})
	}
}

func TestBenchInterruptedPrintsFiguresSoFar(t *testing.T) {
	data, base := startServer(t)
	if code, out, errOut := loadCmd(t, "seed", "--subjects", "20", "--data", data, "--url", base); code != 0 {
		t.Fatalf("seed exited %d: %s%s", code, out, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(300 * time.Millisecond) // then Ctrl-C
		cancel()
	}()
	var out, errb bytes.Buffer
	code := runLoadCmd(ctx, []string{"bench", "--subjects", "20", "--data", data, "--url", base, "-c", "2", "-d", "1h", "--warmup", "0"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "(interrupted)") || !strings.Contains(out.String(), "read") {
		t.Fatalf("exit %d:\n%s\n%s", code, out.String(), errb.String())
	}
}

func TestBenchCeiling(t *testing.T) {
	code, out, errOut := loadCmd(t, "bench", "--ceiling", "-c", "2", "-n", "300", "--warmup", "0", "--json", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	var rep struct {
		Mode  string
		Total struct{ Requests, OK int64 }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Mode != "ceiling" || rep.Total.OK != 300 {
		t.Fatalf("%v %+v\n%s", err, rep, out)
	}
	if !strings.Contains(errOut, "--ceiling") || !strings.Contains(errOut, "machine:") {
		t.Errorf("table: %s", errOut)
	}
}

func TestParseEmployees(t *testing.T) {
	got, err := parseEmployees("service:IE=60, support:CN=10")
	if err != nil || len(got) != 2 || got[1].role != "support" || got[1].country != "CN" || got[1].weight != 10 {
		t.Fatalf("parseEmployees = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "support", "support:IE", "support:IE=0", "support:Ireland=3", ":IE=3", "support:IE=x"} {
		if _, err := parseEmployees(bad); err == nil {
			t.Errorf("parseEmployees(%q) accepted", bad)
		}
	}
}
