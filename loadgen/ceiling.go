package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CeilingBody is what the trivial handler of Ceiling answers: 570 bytes of
// JSON, about the size of a subject read.
var CeilingBody = func() []byte {
	const head = `{"id":"s-00000001","site":"ie-dublin","fields":{"full_name":"Aoife Byrne","birth_date":"1990-05-17","email":"aoife.byrne@example.ie","phone":"+353 86 123 4567","address":"12 Main Street, Galway, H91 A2B3","location":{"lat":53.2707,"lon":-9.0568},"device_id":"3f0e8d2c-9a41-4b6e-8f57-2d1c0b9e7a64","ip_address":"89.101.23.45","interests":"sailing, jazz, chess","bio":"Nurse in Galway. Into sailing and jazz."`
	const tail = `}}` + "\n"
	pad := 570 - len(head) - len(tail) - len(`,"iban":""`)
	return []byte(head + `,"iban":"` + strings.Repeat("0", pad) + `"` + tail)
}()

// Ceiling measures the generator's own ceiling: it serves CeilingBody from
// a net/http server on a loopback listener in this process and runs the
// same engine against it with a single GET op. cfg.URL and cfg.Ops are
// ignored. The server and the generator share this process's CPUs, as
// they share the machine in a real bench.
func Ceiling(ctx context.Context, cfg Config) (*Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadgen: ceiling: listen: %w", err)
	}
	length := strconv.Itoa(len(CeilingBody))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", length)
			w.Write(CeilingBody)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-serveErr
	}()

	cfg.URL = "http://" + ln.Addr().String()
	cfg.Ops = []Op{{
		Name: "get", Weight: 1, Method: http.MethodGet,
		Header: http.Header{"User-Agent": {"clover-bench"}},
		Next: func(_ *rand.Rand, req *Request) error {
			req.Path = append(req.Path, "/v1/subjects/s-00000001"...)
			return nil
		},
	}}
	res, err := Run(ctx, cfg)
	if err != nil {
		return res, err
	}
	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return res, fmt.Errorf("loadgen: ceiling: serve: %w", err)
		}
		serveErr <- err
	default:
	}
	return res, nil
}
