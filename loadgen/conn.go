package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Target is the server a load generator talks to, parsed from a base URL
// such as http://127.0.0.1:7400 or https://enclave.example/prefix.
type Target struct {
	url    string
	addr   string // host:port to dial
	host   string // Host header
	prefix string // base path, without a trailing slash
	tls    *tls.Config
}

// ParseTarget parses a base URL: http or https, a host, an optional path
// prefix, no query or fragment.
func ParseTarget(raw string) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad URL %q: the scheme must be http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("bad URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("bad URL %q: give only scheme, host, port and an optional path prefix", raw)
	}
	t := &Target{url: strings.TrimSuffix(raw, "/"), host: u.Host, prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	if u.Scheme == "https" {
		t.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return t, nil
}

// String returns the base URL.
func (t *Target) String() string { return t.url }

// Request is one HTTP request for a Conn. Its slices are reused from call
// to call: build them with append on [:0].
type Request struct {
	Method string
	// Path is appended to the target's path prefix; it starts with '/' and
	// may carry a query.
	Path []byte
	// Header holds extra header lines, each "Name: value\r\n" (see
	// RenderHeader). Host and Content-Length are added by the Conn.
	Header []byte
	Body   []byte
}

// RenderHeader renders h as header lines for Request.Header, sorted by
// name. It refuses names and values that would break the request.
func RenderHeader(h http.Header) ([]byte, error) {
	var out []byte
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, ": \t\r\n") {
			return nil, fmt.Errorf("bad header name %q", k)
		}
		for _, v := range h[k] {
			if strings.ContainsAny(v, "\r\n") {
				return nil, fmt.Errorf("header %s: the value contains a line break", k)
			}
			out = append(out, http.CanonicalHeaderKey(k)...)
			out = append(out, ": "...)
			out = append(out, v...)
			out = append(out, "\r\n"...)
		}
	}
	return out, nil
}

func (t *Target) appendRequest(dst []byte, r *Request) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, t.prefix...)
	dst = append(dst, r.Path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, t.host...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, r.Header...)
	if len(r.Body) > 0 || r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodPatch {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(r.Body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, r.Body...)
}

// Errors a Conn reports besides network errors.
var (
	// ErrAborted is returned by Do after Abort.
	ErrAborted = errors.New("aborted")
	// ErrChunked is returned for a response with Transfer-Encoding: the
	// lean client reads only Content-Length bodies.
	ErrChunked = errors.New("the server sent a chunked (Transfer-Encoding) response, which the load generator does not read")
)

// ProtocolError is a response the client could not parse.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "malformed HTTP response: " + e.Msg }

// DialError wraps a failure to connect.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("cannot connect to %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// MaxBody caps the size of a response body the client accepts.
const MaxBody = 64 << 20

// Conn is a lean HTTP/1.1 client over one keep-alive connection: the
// request is written with one write from a reused buffer, the response is
// parsed from a reused buffered reader, and nothing is allocated per
// request in the steady state. It dials lazily and redials after an
// error. A Conn is for one goroutine at a time, except Abort.
//
// It speaks only what a load generator needs: requests with
// Content-Length bodies, responses with Content-Length (or without a body,
// or ending at connection close); a chunked response is ErrChunked.
type Conn struct {
	t *Target
	// Timeout bounds each request (write and response); 0 means 30s.
	Timeout time.Duration

	mu       sync.Mutex // guards nc against Abort
	nc       net.Conn
	aborted  atomic.Bool
	deadline time.Time

	br     *bufio.Reader
	wbuf   []byte
	body   []byte
	reused bool // the connection has served a request already
}

// NewConn returns a client for t; it connects on first use.
func (t *Target) NewConn() *Conn { return &Conn{t: t} }

// Abort makes the request in progress, and every later one, fail with
// ErrAborted promptly. It may be called from any goroutine.
func (c *Conn) Abort() {
	c.aborted.Store(true)
	c.mu.Lock()
	if c.nc != nil {
		c.nc.SetDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil {
		return nil
	}
	err := c.nc.Close()
	c.nc = nil
	return err
}

func (c *Conn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 30 * time.Second
}

func (c *Conn) dial() error {
	d := net.Dialer{Timeout: min(c.timeout(), 10*time.Second), KeepAlive: 30 * time.Second}
	var nc net.Conn
	var err error
	if c.t.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.t.tls}
		nc, err = td.DialContext(context.Background(), "tcp", c.t.addr)
	} else {
		nc, err = d.Dial("tcp", c.t.addr)
	}
	if err != nil {
		return &DialError{Addr: c.t.addr, Err: err}
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	c.mu.Lock()
	c.nc = nc
	c.deadline = time.Time{}
	c.mu.Unlock()
	c.reused = false
	if c.aborted.Load() {
		c.drop()
		return ErrAborted
	}
	return nil
}

func (c *Conn) drop() {
	c.mu.Lock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
	c.mu.Unlock()
}

// refreshDeadline pushes the connection's deadline out when less than half
// the timeout is left: a deadline per request would cost a timer update
// each time.
func (c *Conn) refreshDeadline() {
	now := time.Now()
	if c.deadline.Sub(now) > c.timeout()/2 {
		return
	}
	c.mu.Lock()
	if c.nc != nil && !c.aborted.Load() {
		c.deadline = now.Add(c.timeout())
		c.nc.SetDeadline(c.deadline)
	}
	c.mu.Unlock()
}

// Do sends req and reads the response. The body is returned only when
// keepBody is set, and is valid until the next call. A request on a reused
// connection that the server had closed is retried once on a new one.
func (c *Conn) Do(req *Request, keepBody bool) (status int, body []byte, err error) {
	for attempt := 0; ; attempt++ {
		status, body, fresh, err := c.do(req, keepBody)
		if err != nil && c.aborted.Load() {
			return 0, nil, ErrAborted
		}
		if err != nil && !fresh && attempt == 0 && isStaleConn(err) {
			continue
		}
		return status, body, err
	}
}

// isStaleConn reports whether err is what a kept-alive connection that the
// server has since closed gives.
func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *Conn) do(req *Request, keepBody bool) (status int, body []byte, fresh bool, err error) {
	if c.aborted.Load() {
		return 0, nil, true, ErrAborted
	}
	if c.nc == nil {
		if err := c.dial(); err != nil {
			return 0, nil, true, err
		}
	}
	fresh = !c.reused
	c.refreshDeadline()
	c.wbuf = c.t.appendRequest(c.wbuf[:0], req)
	if _, err := c.nc.Write(c.wbuf); err != nil {
		c.drop()
		return 0, nil, fresh, fmt.Errorf("write request: %w", err)
	}
	status, body, closeAfter, err := c.readResponse(keepBody)
	if err != nil {
		c.drop()
		return 0, nil, fresh, err
	}
	c.reused = true
	if closeAfter {
		c.drop()
	}
	return status, body, fresh, nil
}

func (c *Conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, &ProtocolError{"a header line is longer than 16 KiB"}
	}
	if err == io.EOF && len(line) > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return line, nil
}

func (c *Conn) readResponse(keepBody bool) (status int, body []byte, closeAfter bool, err error) {
	line, err := c.readLine()
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, &ProtocolError{fmt.Sprintf("bad status line %q", truncate(line, 40))}
	}
	status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if status < 100 || status > 599 || line[9] < '0' || line[9] > '9' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' {
		return 0, nil, false, &ProtocolError{fmt.Sprintf("bad status line %q", truncate(line, 40))}
	}
	closeAfter = line[7] == '0' // HTTP/1.0
	length := int64(-1)
	for {
		line, err = c.readLine()
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, nil, false, &ProtocolError{fmt.Sprintf("bad header line %q", truncate(line, 40))}
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch len(name) {
		case len("Content-Length"):
			if bytes.EqualFold(name, []byte("Content-Length")) {
				n, perr := strconv.ParseInt(string(value), 10, 64)
				if perr != nil || n < 0 || (length >= 0 && n != length) {
					return 0, nil, false, &ProtocolError{"bad Content-Length"}
				}
				length = n
			}
		case len("Transfer-Encoding"):
			if bytes.EqualFold(name, []byte("Transfer-Encoding")) && !bytes.EqualFold(value, []byte("identity")) {
				return 0, nil, false, ErrChunked
			}
		case len("Connection"):
			if bytes.EqualFold(name, []byte("Connection")) {
				if bytes.EqualFold(value, []byte("close")) {
					closeAfter = true
				} else if bytes.EqualFold(value, []byte("keep-alive")) {
					closeAfter = false
				}
			}
		}
	}
	if status < 200 {
		return 0, nil, false, &ProtocolError{fmt.Sprintf("unexpected informational status %d", status)}
	}
	if status == http.StatusNoContent || status == http.StatusNotModified {
		length = 0
	}
	if length < 0 {
		if !closeAfter {
			return 0, nil, false, &ProtocolError{"a keep-alive response without Content-Length"}
		}
		b, err := io.ReadAll(io.LimitReader(c.br, MaxBody+1))
		if err != nil {
			return 0, nil, false, fmt.Errorf("read response body: %w", err)
		}
		if len(b) > MaxBody {
			return 0, nil, false, &ProtocolError{"the body is larger than 64 MiB"}
		}
		return status, b, true, nil
	}
	if length > MaxBody {
		return 0, nil, false, &ProtocolError{"the body is larger than 64 MiB"}
	}
	if !keepBody {
		if _, err := c.br.Discard(int(length)); err != nil {
			return 0, nil, false, fmt.Errorf("read response body: %w", unexpected(err))
		}
		return status, nil, closeAfter, nil
	}
	if cap(c.body) < int(length) {
		c.body = make([]byte, length)
	}
	c.body = c.body[:length]
	if _, err := io.ReadFull(c.br, c.body); err != nil {
		return 0, nil, false, fmt.Errorf("read response body: %w", unexpected(err))
	}
	return status, c.body, closeAfter, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// ErrorKind names the class of a transport error for counting: a small,
// stable set of strings rather than messages that carry addresses.
func ErrorKind(err error) string {
	var pe *ProtocolError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrAborted):
		return "aborted"
	case errors.Is(err, ErrChunked):
		return "chunked response"
	case errors.As(err, &pe):
		return "malformed response"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var de *DialError
	if errors.As(err, &de) {
		return "cannot connect"
	}
	return "other transport error"
}
