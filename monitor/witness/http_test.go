package witness

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// encodeRequest is the client side of parseRequest.
func encodeRequest(oldSize uint64, proof [][]byte, checkpoint []byte) []byte {
	b := fmt.Appendf(nil, "old %d\n", oldSize)
	for _, h := range proof {
		b = append(b, base64.StdEncoding.EncodeToString(h)...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, checkpoint...)
}

func post(t *testing.T, srv *httptest.Server, path string, body []byte) (int, string, string) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestHandler(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(30)
	stranger := newTestLog(t, "stranger.example/log").grow(3)
	forked := log.fork(6).grow(24)
	f := newFixture(t, log)
	srv := httptest.NewServer(f.w.Handler())
	defer srv.Close()

	status, ct, body := post(t, srv, "/add-checkpoint", encodeRequest(0, nil, log.checkpoint(10)))
	if status != http.StatusOK {
		t.Fatalf("first checkpoint: %d %q", status, body)
	}
	if ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	checkCosig(t, f.key, log.checkpoint(10), []byte(body))

	for _, c := range []struct {
		name       string
		body       []byte
		wantStatus int
		wantCT     string
		wantBody   string
	}{
		{"size mismatch", encodeRequest(5, log.proof(5, 20), log.checkpoint(20)), http.StatusConflict, "text/x.tlog.size", "10\n"},
		{"old zero", encodeRequest(0, nil, log.checkpoint(20)), http.StatusConflict, "text/x.tlog.size", "10\n"},
		{"old beyond size", encodeRequest(10, nil, log.checkpoint(5)), http.StatusBadRequest, "", ""},
		{"fork", encodeRequest(10, nil, forked.checkpoint(10)), http.StatusConflict, "text/plain; charset=utf-8", ""},
		{"bad proof", encodeRequest(10, forked.proof(10, 30), forked.checkpoint(30)), http.StatusUnprocessableEntity, "", ""},
		{"unknown origin", encodeRequest(0, nil, stranger.checkpoint(3)), http.StatusNotFound, "", ""},
		{"bad signature", encodeRequest(10, log.proof(10, 20), bytes.Replace(log.checkpoint(20), []byte("\n20\n"), []byte("\n21\n"), 1)), http.StatusForbidden, "", ""},
		{"malformed", []byte("old 010\n\n" + string(log.checkpoint(20))), http.StatusBadRequest, "", ""},
		{"no checkpoint", []byte("old 0\n\n"), http.StatusBadRequest, "", ""},
		{"too large", bytes.Repeat([]byte("x"), MaxRequestSize+1), http.StatusRequestEntityTooLarge, "", ""},
		{"growth", encodeRequest(10, log.proof(10, 30), log.checkpoint(30)), http.StatusOK, "", ""},
	} {
		status, ct, body := post(t, srv, "/add-checkpoint", c.body)
		if status != c.wantStatus {
			t.Errorf("%s: status %d %q, want %d", c.name, status, body, c.wantStatus)
			continue
		}
		if c.wantCT != "" && ct != c.wantCT {
			t.Errorf("%s: Content-Type %q, want %q", c.name, ct, c.wantCT)
		}
		if c.wantBody != "" && body != c.wantBody {
			t.Errorf("%s: body %q, want %q", c.name, body, c.wantBody)
		}
	}
	if _, size, _ := f.w.Latest(log.origin); size != 30 {
		t.Errorf("latest size %d, want 30", size)
	}

	// Other methods and paths.
	resp, err := srv.Client().Get(srv.URL + "/add-checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q; want 405 and POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if status, _, _ := post(t, srv, "/checkpoint", encodeRequest(0, nil, log.checkpoint(10))); status != http.StatusNotFound {
		t.Errorf("POST /checkpoint: %d, want 404", status)
	}
}

func TestParseRequest(t *testing.T) {
	h := bytes.Repeat([]byte{7}, 32)
	h64 := base64.StdEncoding.EncodeToString(h)
	cp := "o\n1\n" + h64 + "\n\n— o AAAA\n"
	ok := []struct {
		in    string
		old   uint64
		proof int
	}{
		{"old 0\n\n" + cp, 0, 0},
		{"old 18446744073709551615\n" + h64 + "\n" + h64 + "\n\n" + cp, 1<<64 - 1, 2},
		{"old 3\n" + strings.Repeat(h64+"\n", MaxProofLen) + "\n" + cp, 3, MaxProofLen},
	}
	for _, c := range ok {
		old, proof, got, err := parseRequest([]byte(c.in))
		if err != nil || old != c.old || len(proof) != c.proof || string(got) != cp {
			t.Errorf("parseRequest(%q) = %d, %d hashes, %q, %v", c.in, old, len(proof), got, err)
		}
	}
	for _, in := range []string{
		"",
		"old 0",
		"old 0\n",
		"old 0\n\n",
		"old 01\n\n" + cp,
		"old -1\n\n" + cp,
		"old +1\n\n" + cp,
		"old  1\n\n" + cp,
		"Old 1\n\n" + cp,
		"old 18446744073709551616\n\n" + cp,
		"old 1\r\n\n" + cp,
		"old 1\n" + h64 + "\n" + cp, // no empty line before the checkpoint's own
		"old 1\n" + h64[:len(h64)-1] + "\n\n" + cp,
		"old 1\n" + base64.StdEncoding.EncodeToString(h[:31]) + "\n\n" + cp,
		"old 1\n" + base64.RawStdEncoding.EncodeToString(h) + "\n\n" + cp,
		"old 1\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)) + "\n\n" + cp,
		"old 3\n" + strings.Repeat(h64+"\n", MaxProofLen+1) + "\n" + cp,
		"old 0\n\n" + strings.Repeat("x", MaxRequestSize),
	} {
		if _, _, _, err := parseRequest([]byte(in)); err == nil {
			t.Errorf("parseRequest(%.60q) accepted", in)
		}
	}
}

// FuzzParseRequest checks that parseRequest never panics, accepts only what
// it can reproduce exactly (one encoding per request), and respects its caps.
func FuzzParseRequest(f *testing.F) {
	h64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	f.Add([]byte("old 0\n\nclover.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— clover.example/log AAAAAA==\n"))
	f.Add([]byte("old 12\n" + h64 + "\n" + h64 + "\n\ncp\n"))
	f.Add([]byte("old 1\n\n"))
	f.Add([]byte("old 01\n" + h64 + "\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		old, proof, cp, err := parseRequest(body)
		if err != nil {
			return
		}
		if len(proof) > MaxProofLen || len(cp) == 0 || len(body) > MaxRequestSize {
			t.Fatalf("caps not enforced: %d hashes, %d-byte checkpoint, %d-byte body", len(proof), len(cp), len(body))
		}
		for _, h := range proof {
			if len(h) != 32 {
				t.Fatalf("proof hash of %d bytes", len(h))
			}
		}
		if again := encodeRequest(old, proof, cp); !bytes.Equal(again, body) {
			t.Fatalf("parse then encode of %q gave %q", body, again)
		}
	})
}
