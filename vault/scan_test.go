package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/synth"
	"github.com/google/go-cmp/cmp"
)

func TestScanVisitsEverySubjectOnceAtHome(t *testing.T) {
	cfg := enclave.Default()
	cfg.Sites = append(cfg.Sites, enclave.Site{Name: "ie-cork", Country: "IE"})
	cfg.Sites[0].Replica = "ie-cork" // Dublin's records are copied to Cork
	f := newFixture(t, cfg)
	ctx := context.Background()
	want := map[string]string{}
	for i := range 2500 { // more than two pages of records and keys
		id, country := fmt.Sprintf("s-%05d", i), "IE"
		if i%7 == 0 {
			country = "NO"
		}
		if _, err := f.v.Put(ctx, id, country, fields("interests", fmt.Sprintf(`"%d"`, i))); err != nil {
			t.Fatal(err)
		}
		want[id] = fmt.Sprintf(`"%d"`, i)
	}
	for _, id := range []string{"s-00003", "s-00700", "s-02499"} { // erased subjects are skipped
		f.v.Erase(ctx, id)
		delete(want, id)
	}
	// An erased subject's record left behind at a site (as in a restored
	// backup) is still skipped: its key is gone.
	left := f.stores["ie-cork"].records["s-00004"]
	left.Subject = "s-00003"
	f.stores["ie-dublin"].records["s-00003"] = left

	got := map[string]string{}
	sites := map[string]int{}
	err := f.v.Scan(ctx, func(r Record) error {
		if _, dup := got[r.ID]; dup {
			return fmt.Errorf("subject %s visited twice", r.ID)
		}
		got[r.ID] = string(r.Fields["interests"])
		sites[r.Site]++
		if len(r.Handle) != 16 {
			return fmt.Errorf("subject %s has no handle", r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("scanned records (-want +got):\n%s", diff)
	}
	if sites["ie-cork"] != 0 || sites["no-hamar"] == 0 || sites["ie-dublin"] == 0 {
		t.Fatalf("records by site %v: replica copies must not be visited", sites)
	}
}

func TestScanStopsAndPropagates(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	for i := range 10 {
		f.v.Put(ctx, fmt.Sprintf("s-%d", i), "IE", fields("interests", `"x"`))
	}
	n := 0
	if err := f.v.Scan(ctx, func(Record) error { n++; return ErrStop }); err != nil || n != 1 {
		t.Fatalf("ErrStop: visited %d, err %v", n, err)
	}
	boom := errors.New("boom")
	if err := f.v.Scan(ctx, func(Record) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error = %v, want boom", err)
	}
}

// seedScan writes n subjects across Dublin (with a replica at Cork) and
// Hamar, and erases a few; it returns the fixture.
func seedScan(t *testing.T, n int) *fixture {
	t.Helper()
	cfg := enclave.Default()
	cfg.Sites = append(cfg.Sites, enclave.Site{Name: "ie-cork", Country: "IE"})
	cfg.Sites[0].Replica = "ie-cork"
	f := newFixture(t, cfg)
	ctx := context.Background()
	for i := range n {
		country := "IE"
		if i%5 == 0 {
			country = "NO"
		}
		if _, err := f.v.Put(ctx, fmt.Sprintf("s-%05d", i), country, fields("interests", fmt.Sprintf(`"%d"`, i), "email", `"a@example.ie"`)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < n; i += 97 {
		f.v.Erase(ctx, fmt.Sprintf("s-%05d", i))
	}
	return f
}

// visit is what a scan saw of one record.
type visit struct {
	ID, Site, Country string
	Fields            map[string]string
	Handle            string
}

func visitOf(r *Record) visit {
	v := visit{ID: r.ID, Site: r.Site, Country: r.Country, Fields: map[string]string{}, Handle: string(r.Handle)}
	for k, val := range r.Fields {
		v.Fields[k] = string(val)
	}
	return v
}

func TestScanMapMatchesScan(t *testing.T) {
	f := seedScan(t, 700)
	ctx := context.Background()
	var want []visit
	if err := f.v.Scan(ctx, func(r Record) error { want = append(want, visitOf(&r)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(want) < 600 {
		t.Fatalf("Scan visited %d records, want about 690", len(want))
	}
	for _, opts := range []ScanOptions{{}, {Workers: 1, Page: 1}, {Workers: 3, Page: 7}, {Workers: 8, Page: store.MaxScan}} {
		t.Run(fmt.Sprintf("workers=%d,page=%d", opts.Workers, opts.Page), func(t *testing.T) {
			var got []visit
			var calls atomic.Int64
			// out carries the work's result to emit; it starts as what the
			// slot held for an earlier record, and must be overwritten.
			err := ScanMap(ctx, f.v, opts, func(r *Record, out *string) error {
				calls.Add(1)
				*out = r.ID + "/" + string(r.Fields["interests"])
				return nil
			}, func(r *Record, out *string) error {
				if *out != r.ID+"/"+string(r.Fields["interests"]) {
					return fmt.Errorf("emit of %s got the work result %q", r.ID, *out)
				}
				got = append(got, visitOf(r))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("ScanMap differs from Scan (-Scan +ScanMap):\n%s", diff)
			}
			if int(calls.Load()) != len(want) {
				t.Fatalf("work ran %d times for %d records", calls.Load(), len(want))
			}
		})
	}
}

// kekOnly hides every method of a KEK but the interface's, as a KMS-backed
// KEK would have.
type kekOnly struct{ keys.KEK }

// TestScanMapWithAnyKEK: a KEK without UnwrapTo is unwrapped through
// Unwrap, with the same records as the FileKEK's faster path.
func TestScanMapWithAnyKEK(t *testing.T) {
	f := seedScan(t, 300)
	var sites []Site
	for _, name := range f.v.order {
		sites = append(sites, Site{Name: name, Store: f.stores[name], KEK: kekOnly{f.keks[name]}})
	}
	plain, err := New(f.v.enc, f.v.schema, sites)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(v *Vault) []visit {
		var got []visit
		err := ScanMap(context.Background(), v, ScanOptions{Workers: 2, Page: 30}, func(*Record, *struct{}) error { return nil },
			func(r *Record, _ *struct{}) error { got = append(got, visitOf(r)); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := collect(f.v)
	if len(want) < 250 {
		t.Fatalf("visited %d records, want about 290", len(want))
	}
	if diff := cmp.Diff(want, collect(plain)); diff != "" {
		t.Fatalf("scan through Unwrap differs (-UnwrapTo +Unwrap):\n%s", diff)
	}
}

func TestScanRecordsAreFresh(t *testing.T) {
	f := seedScan(t, 300)
	var kept []Record
	if err := f.v.Scan(context.Background(), func(r Record) error { kept = append(kept, r); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, r := range kept {
		if !strings.HasPrefix(string(r.Fields["interests"]), `"`) || string(r.Fields["email"]) != `"a@example.ie"` {
			t.Fatalf("record %d (%s) was overwritten after fn returned: %v", i, r.ID, r.Fields)
		}
		want := `"` + strings.TrimLeft(strings.TrimPrefix(r.ID, "s-"), "0") + `"`
		if r.ID == "s-00000" {
			want = `"0"`
		}
		if got := string(r.Fields["interests"]); got != want {
			t.Fatalf("record %s kept interests %s, want %s", r.ID, got, want)
		}
	}
}

func TestScanMapFirstErrorInOrder(t *testing.T) {
	f := seedScan(t, 600)
	ctx := context.Background()
	var ids []string
	f.v.Scan(ctx, func(r Record) error { ids = append(ids, r.ID); return nil })
	first, later := ids[200], ids[201] // in one batch or the next: either way first must win
	err := ScanMap(ctx, f.v, ScanOptions{Workers: 4, Page: 50}, func(r *Record, _ *struct{}) error {
		if r.ID == first || r.ID == later || r.ID == ids[500] {
			return fmt.Errorf("work failed on %s", r.ID)
		}
		return nil
	}, func(*Record, *struct{}) error { return nil })
	if err == nil || err.Error() != "work failed on "+first {
		t.Fatalf("error = %v, want the one of %s", err, first)
	}
	n := 0
	err = ScanMap(ctx, f.v, ScanOptions{Workers: 2, Page: 10}, func(*Record, *struct{}) error { return nil },
		func(*Record, *struct{}) error {
			if n++; n == 42 {
				return ErrStop
			}
			return nil
		})
	if err != nil || n != 42 {
		t.Fatalf("ErrStop from emit: %d emitted, err %v", n, err)
	}
	err = ScanMap(ctx, f.v, ScanOptions{}, func(*Record, *struct{}) error { return ErrStop },
		func(*Record, *struct{}) error { t.Fatal("emit after ErrStop from work"); return nil })
	if err != nil {
		t.Fatalf("ErrStop from work: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.v.Scan(cctx, func(Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: %v, want context.Canceled", err)
	}
	for _, bad := range []ScanOptions{{Workers: -1}, {Page: -1}, {Page: store.MaxScan + 1}} {
		if err := ScanMap(ctx, f.v, bad, func(*Record, *struct{}) error { return nil }, func(*Record, *struct{}) error { return nil }); err == nil {
			t.Errorf("options %+v accepted", bad)
		}
	}
}

// TestScanTampered: a flipped byte, or a record moved onto another subject
// (the associated data binds it to its subject), fails the scan with
// keys.ErrDecrypt rather than yielding a record.
func TestScanTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(m *memStore)
	}{
		{"flipped byte", func(m *memStore) {
			r := m.records["s-00012"]
			r.Ciphertext = bytes.Clone(r.Ciphertext)
			r.Ciphertext[len(r.Ciphertext)/2] ^= 1
			m.records["s-00012"] = r
		}},
		{"record of another subject", func(m *memStore) {
			r := m.records["s-00011"]
			r.Subject = "s-00012"
			m.records["s-00012"] = r
		}},
		{"key of another subject", func(m *memStore) {
			k := m.keys["s-00011"]
			k.Subject = "s-00012"
			m.keys["s-00012"] = k
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seedScan(t, 40)
			tc.tamper(f.stores["ie-dublin"])
			err := f.v.Scan(context.Background(), func(Record) error { return nil })
			if !errors.Is(err, keys.ErrDecrypt) {
				t.Fatalf("scan of a tampered store: %v, want keys.ErrDecrypt", err)
			}
			if strings.Contains(err.Error(), "s-000") {
				t.Fatalf("error names the subject: %v", err)
			}
		})
	}
}

// failingStore fails its scans.
type failingStore struct {
	store.Store
	records, keys error
}

func (s failingStore) ScanRecords(ctx context.Context, after string, limit int) ([]store.Sealed, error) {
	if s.records != nil {
		return nil, s.records
	}
	return s.Store.ScanRecords(ctx, after, limit)
}

func (s failingStore) ScanKeys(ctx context.Context, after string, limit int) ([]store.Key, error) {
	if s.keys != nil {
		return nil, s.keys
	}
	return s.Store.ScanKeys(ctx, after, limit)
}

func TestScanStoreErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, fs := range []failingStore{{records: boom}, {keys: boom}} {
		f := seedScan(t, 30)
		site := f.v.sites["no-hamar"]
		site.Store = failingStore{Store: site.Store, records: fs.records, keys: fs.keys}
		f.v.sites["no-hamar"] = site
		seen := 0
		err := f.v.Scan(context.Background(), func(Record) error { seen++; return nil })
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "no-hamar") {
			t.Fatalf("scan with a failing store: %v", err)
		}
		if seen == 0 {
			t.Fatal("the sites before the failing one were not scanned")
		}
	}
}

func TestDecodePlaintext(t *testing.T) {
	gen := synth.New(3)
	in := &interner{names: map[string]string{}, countries: map[string]string{}}
	for i := 1; i <= 300; i++ {
		s := gen.Subject(i)
		body, err := s.PutBody()
		if err != nil {
			t.Fatal(err)
		}
		var put struct {
			Country string                     `json:"country"`
			Fields  map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(body, &put); err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(plaintext{V: 1, Country: put.Country, Fields: put.Fields}) // as Put encodes
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]json.RawMessage{}
		country, ok := decodeCanonical(raw, fields, in)
		if !ok {
			t.Fatalf("subject %d's record missed the fast path: %s", i, raw)
		}
		var want plaintext
		json.Unmarshal(raw, &want)
		if country != want.Country || !cmp.Equal(fields, want.Fields) {
			t.Fatalf("subject %d: fast path gave %s %v, encoding/json %s %v", i, country, fields, want.Country, want.Fields)
		}
	}
	for _, tc := range []struct {
		raw     string
		fast    bool
		country string
		fields  map[string]json.RawMessage
		err     bool
	}{
		{raw: `{"v":1,"country":"IE","fields":{}}`, fast: true, country: "IE", fields: map[string]json.RawMessage{}},
		{raw: `{"v":1,"country":"IE","fields":{"a":[1,{"b":null}],"c":-0.5e+3,"d":"\u00e9\n"}}`, fast: true, country: "IE",
			fields: map[string]json.RawMessage{"a": json.RawMessage(`[1,{"b":null}]`), "c": json.RawMessage(`-0.5e+3`), "d": json.RawMessage(`"\u00e9\n"`)}},
		{raw: `{"v":1,"country":"IE","fields":{"a":1,"a":2}}`, fast: true, country: "IE", fields: map[string]json.RawMessage{"a": json.RawMessage(`2`)}},
		// Not the canonical form: encoding/json decides.
		{raw: `{ "v":1,"country":"IE","fields":{"a":1}}`, country: "IE", fields: map[string]json.RawMessage{"a": json.RawMessage(`1`)}},
		{raw: `{"country":"IE","v":1,"fields":{"a":1}}`, country: "IE", fields: map[string]json.RawMessage{"a": json.RawMessage(`1`)}},
		{raw: `{"v":1,"country":"IE","fields":{"\u0061":1}}`, country: "IE", fields: map[string]json.RawMessage{"a": json.RawMessage(`1`)}},
		{raw: `{"v":1,"country":"IE","fields":null}`, country: "IE"},
		// Not a record at all.
		{raw: `{"v":2,"country":"IE","fields":{}}`, err: true},
		{raw: `{"v":1,"country":"IE","fields":{"a":01}}`, err: true},
		{raw: `{"v":1,"country":"IE","fields":{"a":"\x"}}`, err: true},
		{raw: `{"v":1,"country":"IE","fields":{"a":1}} `, country: "IE", fields: map[string]json.RawMessage{"a": json.RawMessage(`1`)}},
		{raw: `{"v":1,"country":"IE","fields":{"a":1}}x`, err: true},
		{raw: `{"v":1,"country":"IE","fields":{"a":[1,]}}`, err: true},
		{raw: `{"v":1,"country":"IE","fields":{"a":tru}}`, err: true},
	} {
		fields := map[string]json.RawMessage{}
		_, fast := decodeCanonical([]byte(tc.raw), fields, in)
		if fast != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.raw, fast, tc.fast)
		}
		country, got, err := decodePlaintext([]byte(tc.raw), map[string]json.RawMessage{}, in)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v, want one: %v", tc.raw, err, tc.err)
			continue
		}
		if !tc.err && (country != tc.country || !cmp.Equal(got, tc.fields, cmp.Comparer(func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }))) {
			t.Errorf("%s: decoded %s %s, want %s %s", tc.raw, country, got, tc.country, tc.fields)
		}
	}
}

// FuzzDecodePlaintext: whatever the fast path accepts, encoding/json reads
// the same way; and decodePlaintext always agrees with encoding/json.
func FuzzDecodePlaintext(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"country":"IE","fields":{}}`,
		`{"v":1,"country":"IE","fields":{"a":[1,{"b":null}],"c":-0.5e+3,"d":"\u00e9\n","e":true,"f":false}}`,
		`{"v":1,"country":"NO","fields":{"location":{"lat":59.1,"lon":10.2},"email":"x@y.no"}}`,
		`{"v":1,"country":"IE","fields":{"a":"\ud800"}}`,
	} {
		f.Add([]byte(s))
	}
	in := &interner{names: map[string]string{"email": "email"}, countries: map[string]string{}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want plaintext
		wantErr := json.Unmarshal(raw, &want) != nil || want.V != 1
		fields := map[string]json.RawMessage{}
		if country, ok := decodeCanonical(raw, fields, in); ok {
			if wantErr {
				t.Fatalf("fast path accepted what encoding/json refuses: %q", raw)
			}
			if country != want.Country || !cmp.Equal(fields, want.Fields) {
				t.Fatalf("%q: fast path %s %v, encoding/json %s %v", raw, country, fields, want.Country, want.Fields)
			}
		}
		country, got, err := decodePlaintext(raw, map[string]json.RawMessage{}, in)
		if (err != nil) != wantErr {
			t.Fatalf("%q: error %v, encoding/json error %v", raw, err, wantErr)
		}
		if err == nil && (country != want.Country || !cmp.Equal(got, want.Fields)) {
			t.Fatalf("%q: decoded %s %v, encoding/json %s %v", raw, country, got, want.Country, want.Fields)
		}
	})
}
