package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

// TestCrashUnderLoad kills `clover serve` with SIGKILL while it answers
// writes and reads, restarts it on the same data directory, and checks the
// audit log: it verifies, every response that carried a log index has its
// entry (with its request id) at that index, no index was given to two
// requests, and the restarted server issues only indexes above those issued
// before the crash.
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the clover binary and runs it under load; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the clover binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "clover")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")

	// First server: drive load and kill it in the middle.
	srv1 := startCrashServer(t, bin, data, dir, "serve1.log")
	base1 := "http://" + srv1.addr
	ingest := crashToken(t, data, "crash-ingest", "ingest")
	service := crashToken(t, data, "crash-service", "service")

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}
	defer client.CloseIdleConnections()

	type ack struct {
		index uint64
		reqID string
		what  string
	}
	var (
		mu       sync.Mutex
		acks     []ack
		written  []string
		nextID   atomic.Int64
		killed   atomic.Bool
		inFlight atomic.Int64
		lostConn atomic.Int64 // transport errors after the kill
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		errs     = make(chan error, 64)
	)
	// do sends one request and records its log index and request id if it
	// succeeded. Before the kill, every request must succeed.
	do := func(method, path, tok, body string, ok int) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base1+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		inFlight.Add(1)
		resp, err := client.Do(req)
		inFlight.Add(-1)
		if err != nil {
			if killed.Load() {
				lostConn.Add(1)
				time.Sleep(10 * time.Millisecond)
				return
			}
			errs <- fmt.Errorf("%s %s before the kill: %v", method, path, err)
			return
		}
		// The headers are the acknowledgement: the entry is durable once
		// they are sent, whether or not the body arrives.
		idxHdr, reqID := resp.Header.Get("Clover-Log-Index"), resp.Header.Get("Clover-Request-Id")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != ok {
			if !killed.Load() {
				errs <- fmt.Errorf("%s %s = %d, want %d", method, path, resp.StatusCode, ok)
			}
			return
		}
		idx, err := strconv.ParseUint(idxHdr, 10, 64)
		if err != nil || reqID == "" {
			errs <- fmt.Errorf("%s %s = %d with Clover-Log-Index %q, Clover-Request-Id %q", method, path, resp.StatusCode, idxHdr, reqID)
			return
		}
		mu.Lock()
		acks = append(acks, ack{idx, reqID, method + " " + path})
		if method == http.MethodPut {
			written = append(written, strings.TrimPrefix(path, "/v1/subjects/"))
		}
		mu.Unlock()
	}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := len(written)
				var id string
				if n > 0 {
					id = written[rng.IntN(n)]
				}
				mu.Unlock()
				if w%2 == 0 || n == 0 {
					k := nextID.Add(1)
					do(http.MethodPut, fmt.Sprintf("/v1/subjects/crash-%d", k), ingest,
						fmt.Sprintf(`{"country":"IE","fields":{"email":"x%d@example.ie"}}`, k), http.StatusCreated)
				} else {
					do(http.MethodGet, "/v1/subjects/"+id, service, "", http.StatusOK)
				}
			}
		}(w)
	}
	time.Sleep(2 * time.Second)
	killed.Store(true)
	busy := inFlight.Load()
	srv1.kill(t)
	// Let the load run into the dead server for a moment, then stop it.
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("load failed before the kill; server log:\n%s", srv1.logText())
	}
	var maxBefore uint64
	for _, a := range acks {
		maxBefore = max(maxBefore, a.index)
	}
	nPut := len(written)
	t.Logf("before the kill: %d acknowledged responses (%d PUTs), highest index %d; %d requests in flight at the kill, %d failed after it",
		len(acks), nPut, maxBefore, busy, lostConn.Load())
	if nPut == 0 || len(acks) == nPut {
		t.Fatalf("the load did not both write and read: %d responses, %d PUTs", len(acks), nPut)
	}

	// What the crash left in the tree, for the record: the entries
	// acknowledged but not yet in a checkpoint are re-fed from the journal.
	var cpAtKill uint64
	if b, err := os.ReadFile(filepath.Join(data, "log", "tree", "checkpoint")); err == nil {
		if cp, err := auditlog.OpenCheckpoint(b, crashLogKey(t, data)); err == nil {
			cpAtKill = cp.Size
		}
	}

	// Second server on the same data: recovery.
	srv2 := startCrashServer(t, bin, data, dir, "serve2.log")
	base2 := "http://" + srv2.addr
	key := crashLogKey(t, data)

	// Acknowledged writes survived the crash.
	mu.Lock()
	sample := written[len(written)-1]
	mu.Unlock()
	var after []ack
	for i := 0; i < 5; i++ {
		for _, r := range []struct{ method, path, tok, body string }{
			{http.MethodGet, "/v1/subjects/" + sample, service, ""},
			{http.MethodPut, fmt.Sprintf("/v1/subjects/after-%d", i), ingest, fmt.Sprintf(`{"country":"IE","fields":{"email":"a%d@example.ie"}}`, i)},
		} {
			var rd io.Reader
			if r.body != "" {
				rd = strings.NewReader(r.body)
			}
			req, _ := http.NewRequest(r.method, base2+r.path, rd)
			req.Header.Set("Authorization", "Bearer "+r.tok)
			if r.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("after restart %s %s: %v", r.method, r.path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
				t.Fatalf("after restart %s %s = %d; server log:\n%s", r.method, r.path, resp.StatusCode, srv2.logText())
			}
			idx, err := strconv.ParseUint(resp.Header.Get("Clover-Log-Index"), 10, 64)
			if err != nil {
				t.Fatalf("after restart %s %s: Clover-Log-Index %q", r.method, r.path, resp.Header.Get("Clover-Log-Index"))
			}
			after = append(after, ack{idx, resp.Header.Get("Clover-Request-Id"), r.method + " " + r.path})
		}
	}
	maxAll := maxBefore
	for _, a := range after {
		if a.index <= maxBefore {
			t.Errorf("after restart %s got index %d, not above %d (the highest issued before the kill)", a.what, a.index, maxBefore)
		}
		maxAll = max(maxAll, a.index)
	}

	// Wait for a published checkpoint covering everything acknowledged.
	var size uint64
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base2 + "/log/checkpoint")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cp, err := auditlog.OpenCheckpoint(b, key)
				if err != nil {
					t.Fatalf("served checkpoint: %v\n%s", err, b)
				}
				if size = cp.Size; size > maxAll {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the checkpoint covers %d entries after 20s, want more than %d; server log:\n%s", size, maxAll, srv2.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Stop the server so that the tree is still while it is verified.
	srv2.terminate(t)

	reqIDs := map[uint64]string{}
	byReqID := map[string]uint64{}
	var dupes []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := auditlog.Verify(ctx, auditlog.DirFetcher(filepath.Join(data, "log", "tree")), key, auditlog.VerifyOptions{
		Entry: func(i uint64, b []byte) error {
			e, err := auditlog.Decode(b)
			if err != nil {
				return err
			}
			reqIDs[i] = e.RequestID
			if e.RequestID != "" {
				if j, ok := byReqID[e.RequestID]; ok {
					dupes = append(dupes, fmt.Sprintf("request id %s at indexes %d and %d", e.RequestID, j, i))
				}
				byReqID[e.RequestID] = i
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("the log does not verify after the crash: %v", err)
	}
	if cp.Size <= maxAll {
		t.Fatalf("verified checkpoint has %d entries, want more than %d", cp.Size, maxAll)
	}
	for _, d := range dupes {
		t.Errorf("duplicate entry: %s", d)
	}
	if uint64(len(reqIDs)) != cp.Size {
		t.Errorf("visited %d entries of %d", len(reqIDs), cp.Size)
	}
	all := append(append([]ack(nil), acks...), after...)
	seen := map[uint64]string{}
	missing := 0
	for _, a := range all {
		if other, ok := seen[a.index]; ok {
			t.Errorf("index %d given to two responses: %s and %s", a.index, other, a.reqID)
		}
		seen[a.index] = a.reqID
		got, ok := reqIDs[a.index]
		switch {
		case !ok:
			t.Errorf("%s (request %s) was acknowledged with index %d, which is not in the log of %d entries", a.what, a.reqID, a.index, cp.Size)
		case got != a.reqID:
			where, found := byReqID[a.reqID]
			t.Errorf("%s was acknowledged with index %d for request %s, but entry %d is request %q (request %s found: %v, at %d)",
				a.what, a.index, a.reqID, a.index, got, a.reqID, found, where)
		default:
			continue
		}
		if missing++; missing >= 20 {
			t.Fatal("too many missing entries; stopping")
		}
	}
	if cp.Size < uint64(len(all)) {
		t.Errorf("the log has %d entries, fewer than the %d acknowledged responses", cp.Size, len(all))
	}
	// Entries of the first process all precede those of the second: the
	// restarted log did not hand out an index the first one had used.
	prefix := func(id string) string { p, _, _ := strings.Cut(id, "-"); return p }
	p1, p2 := prefix(acks[0].reqID), prefix(after[0].reqID)
	if p1 == p2 {
		t.Fatalf("both processes use request id prefix %q", p1)
	}
	var last1, first2 uint64 = 0, cp.Size
	for i, id := range reqIDs {
		switch prefix(id) {
		case p1:
			last1 = max(last1, i)
		case p2:
			first2 = min(first2, i)
		}
	}
	if last1 >= first2 {
		t.Errorf("an entry of the first process (index %d) follows one of the restarted process (index %d)", last1, first2)
	}
	t.Logf("log verified: %d entries, %d acknowledged responses (%d after the restart); checkpoint at the kill %d entries, first process's last entry %d, restart's first %d",
		cp.Size, len(all), len(after), cpAtKill, last1, first2)
}

// crashServer is a `clover serve` child process.
type crashServer struct {
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startCrashServer starts `clover serve` on data and waits until it answers
// /healthz. The process is killed at the end of the test if still running.
func startCrashServer(t *testing.T, bin, data, dir, logName string) *crashServer {
	t.Helper()
	s := &crashServer{addr: freeAddr(t), log: filepath.Join(dir, logName), done: make(chan struct{})}
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.cmd = exec.Command(bin, "serve", "--data", data, "--listen", s.addr)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("clover serve exited: %v; log:\n%s", s.err, s.logText())
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("clover serve did not answer /healthz within 30s; log:\n%s", s.logText())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *crashServer) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-s.done
}

// terminate stops the server with SIGTERM and checks it exits cleanly.
func (s *crashServer) terminate(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("clover serve did not stop within 20s of SIGTERM; log:\n%s", s.logText())
	}
	if s.err != nil {
		t.Errorf("clover serve after SIGTERM: %v; log:\n%s", s.err, s.logText())
	}
}

func (s *crashServer) logText() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

func crashToken(t *testing.T, data, sub, roles string) string {
	t.Helper()
	_, out, errOut := clover(t, "token", "--data", data, "--sub", sub, "--roles", roles, "--country", "IE")
	if errOut != "" {
		t.Fatal(errOut)
	}
	return strings.TrimSpace(out)
}

func crashLogKey(t *testing.T, data string) string {
	t.Helper()
	code, out, errOut := clover(t, "log", "key", "--data", data)
	if code != 0 {
		t.Fatalf("clover log key: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}
