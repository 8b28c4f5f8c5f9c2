package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Fetcher reads the resources of a log served in the C2SP tlog-tiles layout
// ("checkpoint", "tile/0/000", "tile/entries/x001/234.p/7", ...). A missing
// resource is an error matching fs.ErrNotExist. Implementations must cap
// what they read: see the fetchers of this package.
type Fetcher interface {
	Fetch(ctx context.Context, path string) ([]byte, error)
}

// FetcherFunc adapts a function to a Fetcher.
type FetcherFunc func(ctx context.Context, path string) ([]byte, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, path string) ([]byte, error) { return f(ctx, path) }

var (
	_ Fetcher = FetcherFunc(nil)
	_ Fetcher = (*HTTPFetcher)(nil)
)

// resourceLimit is the most a resource at path may hold, or false if path
// is not a tlog-tiles resource.
func resourceLimit(path string) (int64, bool) {
	r, ok := parseResourcePath(path)
	if !ok {
		return 0, false
	}
	switch r.kind {
	case resCheckpoint:
		return maxCheckpointBytes, true
	case resTile:
		return maxTileBytes, true
	}
	return maxBundleBytes, true
}

// DirFetcher reads a log from a directory in the tlog-tiles layout (such as
// the tree directory of a Log). It reads nothing outside the directory and
// nothing that is not a tlog-tiles resource.
func DirFetcher(dir string) Fetcher {
	return FetcherFunc(func(_ context.Context, path string) ([]byte, error) {
		limit, ok := resourceLimit(path)
		if !ok {
			return nil, fmt.Errorf("auditlog: %q is not a tlog-tiles path", path)
		}
		f, err := os.OpenInRoot(dir, path)
		if err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
		defer f.Close()
		return readCapped(f, path, limit)
	})
}

// rootFetcher is DirFetcher over an open directory.
func rootFetcher(root *os.Root) Fetcher {
	return FetcherFunc(func(_ context.Context, path string) ([]byte, error) {
		limit, ok := resourceLimit(path)
		if !ok {
			return nil, fmt.Errorf("auditlog: %q is not a tlog-tiles path", path)
		}
		f, err := root.Open(path)
		if err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
		defer f.Close()
		return readCapped(f, path, limit)
	})
}

func readCapped(r io.Reader, path string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("auditlog: read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &VerificationError{Msg: fmt.Sprintf("%s: larger than %d bytes", path, limit)}
	}
	return data, nil
}

// HTTPFetcher reads a log from an HTTP(S) URL prefix. Each request times out,
// and no response may exceed the size its resource can have.
type HTTPFetcher struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
}

// DefaultFetchTimeout bounds each request of an HTTPFetcher.
const DefaultFetchTimeout = 30 * time.Second

// NewHTTPFetcher returns a fetcher for the log whose resources are under
// prefix (e.g. "https://clover.example/log/"). client may be nil.
func NewHTTPFetcher(prefix string, client *http.Client) (*HTTPFetcher, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("auditlog: log URL %q is not an http(s) URL", prefix)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	if client == nil {
		client = &http.Client{}
	}
	return &HTTPFetcher{base: u, client: client, timeout: DefaultFetchTimeout}, nil
}

// Fetch GETs prefix+path.
func (h *HTTPFetcher) Fetch(ctx context.Context, path string) ([]byte, error) {
	limit, ok := resourceLimit(path)
	if !ok {
		return nil, fmt.Errorf("auditlog: %q is not a tlog-tiles path", path)
	}
	u := h.base.JoinPath(path)
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auditlog: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("auditlog: GET %s: %w", u, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("auditlog: GET %s: %s", u, resp.Status)
	case resp.ContentLength > limit:
		return nil, &VerificationError{Msg: fmt.Sprintf("%s: larger than %d bytes", path, limit)}
	}
	return readCapped(resp.Body, path, limit)
}

// fetchTile returns the w hashes of tile (level, n), w being the tile's width
// in the tree at hand (tileWidth for a full tile). If the partial tile is gone
// it reads the full one, which starts with the same hashes. It also returns
// the path it read, to name in errors.
func fetchTile(ctx context.Context, f Fetcher, level int, n uint64, w int) ([]byte, string, error) {
	p := tilePath(level, n, w)
	data, err := f.Fetch(ctx, p)
	if w < tileWidth && errors.Is(err, fs.ErrNotExist) {
		full := tilePath(level, n, tileWidth)
		if data, err = f.Fetch(ctx, full); !errors.Is(err, fs.ErrNotExist) {
			p = full
		}
		if err == nil && len(data) == maxTileBytes {
			data = data[:w*hashSize]
		}
	}
	if err != nil {
		return nil, p, err
	}
	if len(data) != w*hashSize {
		return nil, p, &VerificationError{Msg: fmt.Sprintf("%s: %d bytes, want %d", p, len(data), w*hashSize)}
	}
	return data, p, nil
}

// fetchBundle returns the first w entries of entry bundle n, w being the
// bundle's width in the tree at hand, falling back to the full bundle if the
// partial one is gone. It also returns the path it read.
func fetchBundle(ctx context.Context, f Fetcher, n uint64, w int) ([][]byte, string, error) {
	p := bundlePath(n, w)
	data, err := f.Fetch(ctx, p)
	if w < tileWidth && errors.Is(err, fs.ErrNotExist) {
		full := bundlePath(n, tileWidth)
		if data, err = f.Fetch(ctx, full); !errors.Is(err, fs.ErrNotExist) {
			p = full
		}
	}
	if err != nil {
		return nil, p, err
	}
	entries, err := ParseEntryBundle(data)
	if err != nil {
		var be *BundleError
		if errors.As(err, &be) && be.Entry >= 0 {
			return nil, p, &VerificationError{Msg: fmt.Sprintf("entry bundle %s index %d: %s", p, n*tileWidth+uint64(be.Entry), be.Msg)}
		}
		return nil, p, &VerificationError{Msg: fmt.Sprintf("entry bundle %s: %v", p, err)}
	}
	want := w
	if p == bundlePath(n, tileWidth) {
		want = tileWidth
	}
	if len(entries) != want {
		return nil, p, &VerificationError{Msg: fmt.Sprintf("entry bundle %s: %d entries, want %d", p, len(entries), want)}
	}
	return entries[:w], p, nil
}

// tileReader adapts a Fetcher to tlog.TileReader, for proofs.
type tileReader struct {
	ctx context.Context
	f   Fetcher
}

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != tileHeight || t.L < 0 || t.L > maxTileLevel || t.N < 0 || t.W < 1 || t.W > tileWidth {
			return nil, fmt.Errorf("auditlog: cannot read tile %+v", t)
		}
		data, _, err := fetchTile(r.ctx, r.f, t.L, uint64(t.N), t.W)
		if err != nil {
			return nil, tileFetchError{err}
		}
		out[i] = data
	}
	return out, nil
}

func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// tileFetchError marks an error of fetching a tile, as opposed to tlog's own
// checks of the tiles it read.
type tileFetchError struct{ err error }

func (e tileFetchError) Error() string { return e.err.Error() }
func (e tileFetchError) Unwrap() error { return e.err }
