package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/store"
)

// Scanning every record (exports, transfers) is a pipeline of three stages,
// so that storage, decryption and the caller's own work overlap:
//
//   - one reader goroutine pages through a site's records and keys in
//     subject order, merges them and cuts the records into batches;
//   - ScanOptions.Workers goroutines unwrap each record's data key, open
//     and decode the record and run the caller's work on it;
//   - the calling goroutine hands the batches' results to the caller's
//     emit, one batch after another in scan order, so that the output is
//     the same whatever the number of workers.
//
// Memory is bounded by the batches in flight (a few per worker) and one
// storage page, not by the number of records. Every record still has its
// own data key, so every record still costs one key unwrap and one AES-GCM
// open with its associated data bound to site and subject, exactly as Get.

// ErrStop, returned by a Scan callback, ends the scan early without error.
var ErrStop = errors.New("vault: stop scanning")

const (
	// scanPage is how many records (and keys) one storage round trip
	// fetches by default.
	scanPage = 2000
	// scanBatch is how many records a worker takes at a time.
	scanBatch = 128
)

// ScanOptions tunes ScanMap. The zero value is the default.
type ScanOptions struct {
	// Workers is the number of goroutines that decrypt and decode records
	// and run the work function; 0 means GOMAXPROCS.
	Workers int
	// Page is how many records one storage round trip fetches, at most
	// store.MaxScan; 0 means 2000.
	Page int
}

func (o ScanOptions) withDefaults() (ScanOptions, error) {
	if o.Workers < 0 || o.Page < 0 || o.Page > store.MaxScan {
		return o, fmt.Errorf("vault: scan options: workers %d, page %d (page at most %d)", o.Workers, o.Page, store.MaxScan)
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Page == 0 {
		o.Page = scanPage
	}
	return o, nil
}

// Scan calls fn with every subject's record, site by site in configuration
// order and by subject id (byte order) within a site, decrypting as it
// goes; each subject is visited once, at its home site (replica copies are
// skipped). It streams: memory does not grow with the number of records.
// Subjects whose key is gone (erased) are skipped. fn's Record is fresh and
// may be kept. An error from fn ends the scan and is returned, unless it is
// ErrStop. fn is called from the calling goroutine; records are decrypted
// ahead of it by other goroutines.
func (v *Vault) Scan(ctx context.Context, fn func(Record) error) error {
	return scan(ctx, v, ScanOptions{}, true, func(*Record, *struct{}) error { return nil },
		func(r *Record, _ *struct{}) error { return fn(*r) })
}

// ScanMap visits the same records in the same order as Scan, and runs the
// caller's work on them in parallel: work is called on each record from
// one of opts.Workers goroutines, concurrently with work on other records;
// emit is then called on the record and the work's result out, from the
// calling goroutine, one record at a time and in scan order. An error from
// either ends the scan and is returned, unless it is ErrStop; when several
// records fail, the error returned is the first one in scan order.
//
// To keep memory flat and allocations low, records and results live in
// slots that are reused: a Record (its Fields and their bytes) is valid
// only until emit returns for it, and the *T that work receives holds what
// work left in the slot for an earlier record, so that its buffers can be
// reused (set every part of it that emit reads).
func ScanMap[T any](ctx context.Context, v *Vault, opts ScanOptions, work func(rec *Record, out *T) error, emit func(rec *Record, out *T) error) error {
	return scan(ctx, v, opts, false, work, emit)
}

// scanBatchOf is a run of consecutive records of one site, with the slots
// their decoding and the caller's work fill. done is closed once a worker
// has filled them.
type scanBatchOf[T any] struct {
	site   Site
	sealed []store.Sealed
	keys   []*store.Key // keys[i] is sealed[i]'s key, nil if it has none
	recs   []Record
	plain  [][]byte // plain[i] holds recs[i]'s plaintext, which its Fields alias
	outs   []T
	skip   []bool
	errs   []error
	err    error // the reader's error; the batch holds no records
	done   chan struct{}
}

func (b *scanBatchOf[T]) reset(site Site, n int) {
	b.site, b.err, b.done = site, nil, make(chan struct{})
	b.sealed, b.keys = b.sealed[:0], b.keys[:0]
	if cap(b.recs) < n {
		b.recs, b.plain, b.outs, b.skip, b.errs = make([]Record, n), make([][]byte, n), make([]T, n), make([]bool, n), make([]error, n)
	}
	b.recs, b.plain, b.outs, b.skip, b.errs = b.recs[:n], b.plain[:n], b.outs[:n], b.skip[:n], b.errs[:n]
}

func scan[T any](ctx context.Context, v *Vault, opts ScanOptions, fresh bool, work func(*Record, *T) error, emit func(*Record, *T) error) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The pool of batches bounds the records in flight; order and todo
	// can hold all of them, so sending to them never blocks.
	pool := opts.Workers*2 + 2
	free := make(chan *scanBatchOf[T], pool)
	for range pool {
		free <- &scanBatchOf[T]{}
	}
	order := make(chan *scanBatchOf[T], pool)
	todo := make(chan *scanBatchOf[T], pool)

	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(order)
		defer close(todo)
		r := scanReader[T]{v: v, page: opts.Page, free: free, order: order, todo: todo}
		r.run(ctx)
	})
	names := map[string]string{}
	for _, f := range v.schema.Fields() {
		names[f.Name] = f.Name
	}
	for range opts.Workers {
		wg.Go(func() {
			w := &scanWorker{in: interner{names: names, countries: map[string]string{}}}
			for b := range todo {
				decodeBatch(v, w, b, fresh, work)
				close(b.done)
			}
		})
	}
	defer func() {
		cancel() // the reader stops early, and then the workers
		wg.Wait()
	}()

	for b := range order {
		<-b.done
		if b.err != nil {
			return scanResult(b.err)
		}
		for i := range b.recs {
			if b.errs[i] != nil {
				return scanResult(b.errs[i])
			}
			if b.skip[i] {
				continue
			}
			if err := emit(&b.recs[i], &b.outs[i]); err != nil {
				return scanResult(err)
			}
		}
		free <- b
	}
	return ctx.Err()
}

func scanResult(err error) error {
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// scanReader pages through every site's records and keys and hands them
// out in batches.
type scanReader[T any] struct {
	v           *Vault
	page        int
	free        chan *scanBatchOf[T]
	order, todo chan *scanBatchOf[T]
}

func (r *scanReader[T]) run(ctx context.Context) {
	for _, name := range r.v.order {
		if err := r.site(ctx, r.v.sites[name]); err != nil {
			if b, ok := r.batch(ctx, r.v.sites[name], 0); ok {
				b.err = err
				close(b.done)
				r.order <- b
			}
			return
		}
	}
}

// batch takes a free batch for n records of site; false once ctx is done.
func (r *scanReader[T]) batch(ctx context.Context, site Site, n int) (*scanBatchOf[T], bool) {
	select {
	case b := <-r.free:
		b.reset(site, n)
		return b, true
	case <-ctx.Done():
		return nil, false
	}
}

func (r *scanReader[T]) site(ctx context.Context, site Site) error {
	ctx, cancel := context.WithCancel(ctx)
	keys, wait := readKeys(ctx, site, r.page)
	defer wait()
	defer cancel()
	after := ""
	for {
		page, err := site.Store.ScanRecords(ctx, after, r.page)
		if err != nil {
			return fmt.Errorf("vault: scan records at %s: %w", site.Name, err)
		}
		last := len(page) < r.page
		for len(page) > 0 {
			n := min(len(page), scanBatch)
			b, ok := r.batch(ctx, site, n)
			if !ok {
				return ctx.Err()
			}
			for i := range n {
				k, err := keys.next(ctx, page[i].Subject)
				if err != nil {
					r.free <- b
					return err
				}
				b.sealed = append(b.sealed, page[i])
				b.keys = append(b.keys, k)
			}
			r.order <- b
			r.todo <- b
			after = page[n-1].Subject
			page = page[n:]
		}
		if last {
			return nil
		}
	}
}

// keyCursor walks a site's keys in the same byte order as its records.
// A goroutine of its own reads the keys a page ahead, so that reading keys
// and reading records (two databases in the embedded store) overlap.
type keyCursor struct {
	pages <-chan keyPage
	keys  []store.Key
	at    int
	done  bool
}

// keyPage is a page of keys, or the error that ended the reading.
type keyPage struct {
	keys []store.Key
	err  error
}

// readKeys starts reading site's keys; the reading stops when ctx is done.
// wait returns once the reading goroutine has ended.
func readKeys(ctx context.Context, site Site, size int) (c *keyCursor, wait func()) {
	pages := make(chan keyPage, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(pages)
		after := "" // the first page starts at the beginning
		for {
			page, err := site.Store.ScanKeys(ctx, after, size)
			if err != nil {
				err = fmt.Errorf("vault: scan keys at %s: %w", site.Name, err)
			}
			select {
			case pages <- keyPage{page, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(page) < size {
				return
			}
			after = page[len(page)-1].Subject
		}
	})
	return &keyCursor{pages: pages}, wg.Wait
}

// next returns the key of subject, or nil if it has none. Subjects must be
// asked for in increasing order.
func (c *keyCursor) next(ctx context.Context, subject string) (*store.Key, error) {
	for {
		for c.at < len(c.keys) && c.keys[c.at].Subject < subject {
			c.at++
		}
		if c.at < len(c.keys) {
			if c.keys[c.at].Subject == subject {
				return &c.keys[c.at], nil
			}
			return nil, nil
		}
		if c.done {
			return nil, nil
		}
		select {
		case p, ok := <-c.pages:
			if p.err != nil {
				return nil, p.err
			}
			c.keys, c.at, c.done = p.keys, 0, !ok
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// unwrapperTo is a KEK that can unwrap a data key into the caller's buffer,
// as *keys.FileKEK can; other KEKs are called through Unwrap.
type unwrapperTo interface {
	UnwrapTo(dst, wrapped, aad []byte) ([]byte, error)
}

var _ unwrapperTo = (*keys.FileKEK)(nil)

// scanWorker is one decoding worker's reused state.
type scanWorker struct {
	in  interner
	aad []byte // associated data being checked
	dk  []byte // the data key being used
}

// unwrap returns the data key of subject at site, in w's buffer when the
// KEK allows it.
func (w *scanWorker) unwrap(kek keys.KEK, wrapped []byte, site, subject string) ([]byte, error) {
	w.aad = keys.AppendKeyAAD(w.aad[:0], site, subject)
	if u, ok := kek.(unwrapperTo); ok {
		dk, err := u.UnwrapTo(w.dk[:0], wrapped, w.aad)
		if err == nil {
			w.dk = dk
		}
		return dk, err
	}
	return kek.Unwrap(wrapped, w.aad)
}

// decodeBatch opens every record of b and runs work on those of its
// site. It stops at the first error, which the emitter returns when it
// reaches that record. fresh gives every record its own map and bytes
// instead of reusing the slot's.
func decodeBatch[T any](v *Vault, w *scanWorker, b *scanBatchOf[T], fresh bool, work func(*Record, *T) error) {
	site := b.site.Name
	defer clear(w.dk[:cap(w.dk)])
	for i := range b.sealed {
		b.skip[i], b.errs[i] = true, nil
		s, k := &b.sealed[i], b.keys[i]
		if k == nil {
			continue // erased: the key is gone
		}
		dk, err := w.unwrap(b.site.KEK, k.Wrapped, site, s.Subject)
		if err != nil {
			b.errs[i] = fmt.Errorf("vault: unwrap data key at %s: %w", site, err)
			return
		}
		w.aad = keys.AppendRecordAAD(w.aad[:0], site, s.Subject)
		// A fresh record owns its plaintext (its Fields alias it); a slot
		// reuses its own, which is free again once the slot's record has
		// been emitted.
		var plain []byte
		if !fresh {
			plain = b.plain[i][:0]
		}
		raw, err := keys.OpenTo(plain, dk, s.Ciphertext, w.aad)
		if err != nil {
			b.errs[i] = fmt.Errorf("vault: open record at %s: %w", site, err)
			return
		}
		if !fresh {
			b.plain[i] = raw
		}
		rec := &b.recs[i]
		fields := rec.Fields
		if fresh || fields == nil {
			fields = make(map[string]json.RawMessage, 16)
		} else {
			clear(fields)
		}
		country, fields, err := decodePlaintext(raw, fields, &w.in)
		if err != nil {
			b.errs[i] = fmt.Errorf("vault: record at %s has an unknown encoding", site)
			return
		}
		home := site
		if pl, err := v.enc.Place(country); err == nil {
			home = pl.Home
		}
		if home != site {
			continue // a replica's copy; the subject is visited at its home
		}
		*rec = Record{ID: s.Subject, Site: home, Country: country, Fields: fields, Updated: s.Updated, Handle: k.Handle}
		if err := work(rec, &b.outs[i]); err != nil {
			b.errs[i] = err
			return
		}
		b.skip[i] = false
	}
}

// errEncoding: a record's plaintext is not a record of this version.
var errEncoding = errors.New("vault: unknown record encoding")

// decodePlaintext decodes a record's plaintext into fields (empty) and
// returns the record's country and fields. Records as Put writes them
// (encoding/json output of plaintext: no spaces, keys in struct then
// sorted order) take a fast path that slices the field values out of raw
// without copying; anything else is left to encoding/json, so that the
// result is always what json.Unmarshal gives.
func decodePlaintext(raw []byte, fields map[string]json.RawMessage, in *interner) (string, map[string]json.RawMessage, error) {
	if country, ok := decodeCanonical(raw, fields, in); ok {
		return country, fields, nil
	}
	var pt plaintext
	if err := json.Unmarshal(raw, &pt); err != nil || pt.V != 1 {
		return "", nil, errEncoding
	}
	return pt.Country, pt.Fields, nil
}

const (
	canonicalHead   = `{"v":1,"country":"`
	canonicalFields = `,"fields":{`
	// maxDepth caps the nesting of a field value on the fast path; deeper
	// values go to encoding/json.
	maxDepth = 64
)

// decodeCanonical is the fast path of decodePlaintext: it accepts only
// `{"v":1,"country":"CC","fields":{...}}` with no white space, a country
// and field names of printable ASCII without escapes, and field values
// that are valid JSON; false otherwise (fields may then be partly filled).
func decodeCanonical(raw []byte, fields map[string]json.RawMessage, in *interner) (string, bool) {
	if len(raw) < len(canonicalHead) || string(raw[:len(canonicalHead)]) != canonicalHead {
		return "", false
	}
	p := len(canonicalHead) - 1
	end, ok := plainString(raw, p)
	if !ok {
		return "", false
	}
	country := raw[p+1 : end-1]
	p = end
	if len(raw)-p < len(canonicalFields) || string(raw[p:p+len(canonicalFields)]) != canonicalFields {
		return "", false
	}
	p += len(canonicalFields)
	if p < len(raw) && raw[p] == '}' {
		p++
	} else {
		for {
			end, ok := plainString(raw, p)
			if !ok || end >= len(raw) || raw[end] != ':' {
				return "", false
			}
			name := raw[p+1 : end-1]
			p = end + 1
			end, ok = skipValue(raw, p, 0)
			if !ok || end >= len(raw) {
				return "", false
			}
			fields[in.name(name)] = json.RawMessage(raw[p:end:end])
			p = end + 1
			if raw[end] == '}' {
				break
			}
			if raw[end] != ',' {
				return "", false
			}
		}
	}
	if p != len(raw)-1 || raw[p] != '}' {
		return "", false
	}
	return in.country(country), true
}

// interner gives the strings of field names and countries without
// allocating one per record. One worker owns it; names is shared and
// read-only (the schema's field names).
type interner struct {
	names     map[string]string
	countries map[string]string
}

func (in *interner) name(b []byte) string {
	if s, ok := in.names[string(b)]; ok {
		return s
	}
	return string(b)
}

func (in *interner) country(b []byte) string {
	if s, ok := in.countries[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.countries) < 1024 { // countries are few; anything else is not kept
		in.countries[s] = s
	}
	return s
}

// plainString returns the end of the JSON string at b[p] if it holds only
// printable ASCII other than a quote and a backslash (so that its bytes are its value).
func plainString(b []byte, p int) (int, bool) {
	if p >= len(b) || b[p] != '"' {
		return 0, false
	}
	for p++; p < len(b); p++ {
		switch c := b[p]; {
		case c == '"':
			return p + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return 0, false
		}
	}
	return 0, false
}

// skipValue returns the end of the JSON value that starts at b[p], or
// false if there is none or it nests deeper than maxDepth.
func skipValue(b []byte, p, depth int) (int, bool) {
	if p >= len(b) {
		return 0, false
	}
	switch b[p] {
	case '"':
		return skipString(b, p)
	case '{', '[':
		if depth >= maxDepth {
			return 0, false
		}
		closing := byte('}')
		if b[p] == '[' {
			closing = ']'
		}
		p++
		if p < len(b) && b[p] == closing {
			return p + 1, true
		}
		for {
			if closing == '}' {
				end, ok := skipString(b, p)
				if !ok || end >= len(b) || b[end] != ':' {
					return 0, false
				}
				p = end + 1
			}
			end, ok := skipValue(b, p, depth+1)
			if !ok || end >= len(b) {
				return 0, false
			}
			switch b[end] {
			case ',':
				p = end + 1
			case closing:
				return end + 1, true
			default:
				return 0, false
			}
		}
	case 't':
		return literal(b, p, "true")
	case 'f':
		return literal(b, p, "false")
	case 'n':
		return literal(b, p, "null")
	default:
		return skipNumber(b, p)
	}
}

func literal(b []byte, p int, lit string) (int, bool) {
	if len(b)-p < len(lit) || string(b[p:p+len(lit)]) != lit {
		return 0, false
	}
	return p + len(lit), true
}

// skipString returns the end of the JSON string at b[p]: escapes must be
// valid, control characters are refused.
func skipString(b []byte, p int) (int, bool) {
	if p >= len(b) || b[p] != '"' {
		return 0, false
	}
	for p++; p < len(b); {
		switch c := b[p]; {
		case c == '"':
			return p + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if p+1 >= len(b) {
				return 0, false
			}
			switch b[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if len(b)-p < 6 {
					return 0, false
				}
				for _, h := range b[p+2 : p+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false
					}
				}
				p += 6
			default:
				return 0, false
			}
		default:
			p++
		}
	}
	return 0, false
}

// skipNumber returns the end of the JSON number at b[p].
func skipNumber(b []byte, p int) (int, bool) {
	digits := func(p int) int {
		for p < len(b) && '0' <= b[p] && b[p] <= '9' {
			p++
		}
		return p
	}
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p >= len(b):
		return 0, false
	case b[p] == '0':
		p++
	case '1' <= b[p] && b[p] <= '9':
		p = digits(p)
	default:
		return 0, false
	}
	if p < len(b) && b[p] == '.' {
		end := digits(p + 1)
		if end == p+1 {
			return 0, false
		}
		p = end
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		end := digits(p)
		if end == p {
			return 0, false
		}
		p = end
	}
	return p, true
}
