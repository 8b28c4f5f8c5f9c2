package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTransferVerify runs a transfer against a live server and checks the
// received file against its ledger entry, then a tampered copy.
func TestTransferVerify(t *testing.T) {
	data, base := startServer(t)
	if code, out, errOut := loadCmd(t, "seed", "--subjects", "2000", "--seed", "3", "--data", data, "--url", base, "--concurrency", "8"); code != 0 {
		t.Fatalf("seed exited %d: %s%s", code, out, errOut)
	}
	_, tok, _ := clover(t, "token", "--data", data, "--sub", "officer-1", "--roles", "transfer-officer", "--country", "IE")
	// Germany is the most populous country of the synthetic population (the
	// seed is fixed), so its age bands are large enough for us-analytics's k.
	req, _ := http.NewRequest("POST", base+"/v1/transfers", strings.NewReader(`{"destination":"us-analytics","purpose":"analytics","filter":{"country":"DE"}}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	index := resp.Trailer.Get("Clover-Transfer-Log-Index")
	if resp.StatusCode != 200 || index == "" {
		t.Fatalf("transfer = %d, trailer index %q: %.200s", resp.StatusCode, index, body)
	}
	file := filepath.Join(t.TempDir(), "export.ndjson")
	os.WriteFile(file, body, 0o600)
	_, key, _ := clover(t, "log", "key", "--data", data)
	key = strings.TrimSpace(key)

	var code int
	var out, errOut string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// The entry is verifiable once a published checkpoint covers it.
		code, out, errOut = clover(t, "transfer", "verify", "--file", file, "--index", index, "--log", base+"/log/", "--key", key)
		if code == 0 {
			break
		}
	}
	if code != 0 || !strings.Contains(out, "matches transfer entry "+index) || !strings.Contains(out, "complete") {
		t.Fatalf("verify of the received file: exit %d: %s%s", code, out, errOut)
	}
	os.WriteFile(file, append(body, '\n'), 0o600)
	code, _, errOut = clover(t, "transfer", "verify", "--file", file, "--index", index, "--log", base+"/log/", "--key", key)
	if code != 1 || !strings.Contains(errOut, "is not what entry "+index+" recorded") {
		t.Fatalf("verify of a tampered file: exit %d: %s", code, errOut)
	}
	if code, _, _ := clover(t, "transfer", "verify", "--file", file, "--log", base+"/log/", "--key", key); code != 2 {
		t.Fatalf("verify without --index: exit %d, want 2", code)
	}
}

// TestTransferCommand runs `clover transfer` against a live server.
func TestTransferCommand(t *testing.T) {
	data, base := startServer(t)
	if code, out, errOut := loadCmd(t, "seed", "--subjects", "2000", "--seed", "3", "--data", data, "--url", base, "--concurrency", "8"); code != 0 {
		t.Fatalf("seed exited %d: %s%s", code, out, errOut)
	}
	file := filepath.Join(t.TempDir(), "de.ndjson")
	args := []string{"transfer", "--destination", "us-analytics", "--out", file, "--filter", `{"country":"DE"}`, "--data", data, "--url", base}
	code, out, errOut := clover(t, args...)
	if code != 0 || !strings.Contains(out, "wrote "+file) || !strings.Contains(out, "ledger entry") {
		t.Fatalf("clover transfer: exit %d: %s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(file)
	if len(b) == 0 || strings.Contains(string(b), "@") {
		t.Fatalf("export is empty or holds an email: %.200s", b)
	}
	// An existing file is not overwritten.
	if code, _, errOut := clover(t, args...); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("second run into the same file: exit %d: %s", code, errOut)
	}
	// A refused transfer says why and writes nothing.
	other := filepath.Join(t.TempDir(), "ch.ndjson")
	code, _, errOut = clover(t, "transfer", "--destination", "ch-research", "--out", other, "--data", data, "--url", base)
	if _, err := os.Stat(other); code != 1 || !strings.Contains(errOut, "reidentification_risk") || err == nil {
		t.Fatalf("refused transfer: exit %d, file exists %v: %s", code, err == nil, errOut)
	}
	if code, _, _ := clover(t, "transfer", "--out", other); code != 2 {
		t.Fatalf("transfer without --destination: exit %d, want 2", code)
	}
}
