package witness

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// handler serves add-checkpoint for a Witness.
type handler struct{ w *Witness }

var _ http.Handler = handler{}

func (h handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "add-checkpoint takes POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(rw, fmt.Sprintf("request larger than %d bytes", MaxRequestSize), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "reading the request failed", http.StatusBadRequest)
		return
	}
	oldSize, proof, checkpoint, err := parseRequest(body)
	if err != nil {
		http.Error(rw, "malformed add-checkpoint request: "+err.Error(), http.StatusBadRequest)
		return
	}
	cosig, err := h.w.AddCheckpoint(r.Context(), oldSize, proof, checkpoint)
	if err != nil {
		werr, ok := errors.AsType[*Error](err)
		switch {
		case !ok:
			// The request was cancelled while it waited.
			http.Error(rw, "request cancelled", http.StatusServiceUnavailable)
		case errors.Is(werr, ErrOldSize):
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", werr.LatestSize)
		case werr.Status == http.StatusInternalServerError:
			http.Error(rw, "the witness could not record the checkpoint", werr.Status)
		default:
			http.Error(rw, werr.Error(), werr.Status)
		}
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Write(cosig)
}
