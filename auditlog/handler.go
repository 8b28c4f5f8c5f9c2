package auditlog

import (
	"net/http"
	"os"
	"strings"
)

// Handler serves the log read-only in the C2SP tlog-tiles layout, at paths
// relative to where it is mounted (mount it with http.StripPrefix):
// "checkpoint", "tile/<L>/<N>[.p/<W>]" and "tile/entries/<N>[.p/<W>]". Any
// other path is 404, a path with "." or ".." elements or empty elements is
// 400, and only GET and HEAD are allowed. Directories are never listed.
func (l *Log) Handler() http.Handler { return treeHandler{l.tree} }

type treeHandler struct{ root *os.Root }

func (h treeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	for _, elem := range strings.Split(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
	}
	res, ok := parseResourcePath(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := h.root.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	if res.kind == resCheckpoint {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		hdr.Set("Cache-Control", "no-cache")
	} else {
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	http.ServeContent(w, r, "", info.ModTime(), f)
}
