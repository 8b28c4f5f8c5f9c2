package auditlog

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

func TestHandler(t *testing.T) {
	l := openLog(t, testOptions(t, t.TempDir()))
	entries := appendN(t, l, 0, 300)
	waitIntegrated(t, l, 299)
	mux := http.NewServeMux()
	mux.Handle("/log/", http.StripPrefix("/log/", l.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	cases := []struct {
		path   string
		status int
		ctype  string
	}{
		{"/log/checkpoint", 200, "text/plain; charset=utf-8"},
		{"/log/tile/0/000", 200, "application/octet-stream"},
		{"/log/tile/0/001.p/44", 200, "application/octet-stream"},
		{"/log/tile/1/000.p/1", 200, "application/octet-stream"},
		{"/log/tile/entries/000", 200, "application/octet-stream"},
		{"/log/tile/entries/001.p/44", 200, "application/octet-stream"},
		{"/log/tile/entries/002", 404, ""},
		{"/log/tile/0/x001/000", 404, ""},
		{"/log/tile/0", 404, ""},
		{"/log/tile/entries", 404, ""},
		{"/log/", 400, ""},
		{"/log/tile/0/", 400, ""},
		{"/log/.state/treeState", 404, ""},
		{"/log/tile/0/000/", 400, ""},
		// ServeMux cleans these and redirects: they end up 404.
		{"/log/tile//000", 404, ""},
		{"/log/tile/0/000.p/../../../.state/treeState", 404, ""},
	}
	for _, c := range cases {
		resp, body := get(http.MethodGet, c.path)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s = %d, want %d (%s)", c.path, resp.StatusCode, c.status, body)
			continue
		}
		if c.ctype != "" && resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, resp.Header.Get("Content-Type"), c.ctype)
		}
	}
	// The handler itself refuses odd paths, whatever serves it.
	for _, p := range []string{"/tile//000", "/tile/0/../000", "/./checkpoint", "/tile/0/000.p/../../../.state/treeState", "//checkpoint"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = p
		l.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("handler GET %q = %d, want 400", p, rec.Code)
		}
	}
	if resp, _ := get(http.MethodPost, "/log/checkpoint"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d", resp.StatusCode)
	}
	if resp, body := get(http.MethodHead, "/log/tile/0/000"); resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != maxTileBytes {
		t.Errorf("HEAD = %d, %d bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	if resp, _ := get(http.MethodGet, "/log/checkpoint"); resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("checkpoint Cache-Control %q", resp.Header.Get("Cache-Control"))
	}

	// A standard tlog-tiles client follows the paths and gets the same
	// proofs and entries.
	u, _ := url.Parse(srv.URL + "/log/")
	hf, err := client.NewHTTPFetcher(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, _ := note.NewVerifier(l.VerifierKey())
	cp, _, _, err := client.FetchCheckpoint(ctx, hf.ReadCheckpoint, v, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 300 {
		t.Fatalf("tessera client sees size %d", cp.Size)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, hf.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{0, 1, 255, 256, 299} {
		theirs, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if len(theirs) != len(ours) {
			t.Fatalf("proof of %d: %d hashes, tessera %d", i, len(ours), len(theirs))
		}
		for k := range ours {
			if !bytes.Equal(ours[k], theirs[k]) {
				t.Fatalf("proof of %d differs from tessera's at %d", i, k)
			}
		}
		b, err := client.GetEntryBundle(ctx, hf.ReadEntryBundle, i/256, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Entries[i%256], entries[i]) {
			t.Fatalf("tessera client reads another entry %d", i)
		}
	}
}
