// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's tests call Run with a function that opens a fresh, empty
// store; Run then checks the behaviour store.Store documents: not-found
// errors, round-trips of records and keys, first-wins key creation under
// concurrency, independence of subjects, byte-exactness and cancellation.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloverenclave/clover/store"
)

// Run runs the conformance suite as subtests of t.
//
// open is called once per subtest and must return a new, empty store that no
// other subtest uses. open owns the store's lifetime: it must arrange, with
// t.Cleanup, for the store to be closed (and any backing data removed) when
// the subtest ends. Run never calls Close on a store it did not open itself.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"RecordRoundTrip", testRecordRoundTrip},
		{"ReplaceRecord", testReplaceRecord},
		{"DeleteRecord", testDeleteRecord},
		{"DeleteMissingRecord", testDeleteMissingRecord},
		{"PutKeyFirstWins", testPutKeyFirstWins},
		{"PutKeyConcurrent", testPutKeyConcurrent},
		{"DeleteKey", testDeleteKey},
		{"DeleteMissingKey", testDeleteMissingKey},
		{"SubjectsIndependent", testSubjectsIndependent},
		{"KeyAndRecordIndependent", testKeyAndRecordIndependent},
		{"BinaryBytes", testBinaryBytes},
		{"LongSubject", testLongSubject},
		{"ContextCancelled", testContextCancelled},
		{"Scan", testScan},
		{"ScanLimits", testScanLimits},
		{"ScanByteOrder", testScanByteOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// updated is a fixed, non-UTC timestamp with nanoseconds, so that a backend
// must both normalise to UTC and keep microseconds to pass.
func updated(offset time.Duration) time.Time {
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	return time.Date(2024, 2, 29, 23, 59, 58, 123456789, zone).Add(offset)
}

func sealed(subject, ciphertext string, offset time.Duration) store.Sealed {
	return store.Sealed{
		Subject:    subject,
		Ciphertext: []byte(ciphertext),
		Updated:    updated(offset),
	}
}

func key(subject, wrapped string) store.Key {
	return store.Key{
		Subject: subject,
		Wrapped: []byte(wrapped),
		KEKID:   "kek-1",
		Handle:  []byte("handle-" + subject),
	}
}

// stored is what a backend must return for r: Updated at microsecond
// precision, in UTC.
func stored(r store.Sealed) store.Sealed {
	r.Updated = r.Updated.Truncate(time.Microsecond).UTC()
	return r
}

func putRecord(t *testing.T, s store.Store, r store.Sealed) {
	t.Helper()
	if err := s.PutRecord(context.Background(), r); err != nil {
		t.Fatalf("PutRecord(%q): %v", r.Subject, err)
	}
}

// wantRecord checks that subject's record is want, exactly, in UTC.
func wantRecord(t *testing.T, s store.Store, want store.Sealed) {
	t.Helper()
	got, err := s.GetRecord(context.Background(), want.Subject)
	if err != nil {
		t.Fatalf("GetRecord(%q): %v", want.Subject, err)
	}
	if diff := cmp.Diff(stored(want), got); diff != "" {
		t.Errorf("GetRecord(%q) mismatch (-want +got):\n%s", want.Subject, diff)
	}
	if loc := got.Updated.Location(); loc != time.UTC {
		t.Errorf("GetRecord(%q).Updated location = %v, want UTC", want.Subject, loc)
	}
}

func wantNoRecord(t *testing.T, s store.Store, subject string) {
	t.Helper()
	got, err := s.GetRecord(context.Background(), subject)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRecord(%q) = %+v, %v; want ErrNotFound", subject, got, err)
	}
}

func putKey(t *testing.T, s store.Store, k store.Key) store.Key {
	t.Helper()
	got, err := s.PutKey(context.Background(), k)
	if err != nil {
		t.Fatalf("PutKey(%q): %v", k.Subject, err)
	}
	return got
}

func wantKey(t *testing.T, s store.Store, want store.Key) {
	t.Helper()
	got, err := s.GetKey(context.Background(), want.Subject)
	if err != nil {
		t.Fatalf("GetKey(%q): %v", want.Subject, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetKey(%q) mismatch (-want +got):\n%s", want.Subject, diff)
	}
}

func wantNoKey(t *testing.T, s store.Store, subject string) {
	t.Helper()
	got, err := s.GetKey(context.Background(), subject)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKey(%q) = %+v, %v; want ErrNotFound", subject, got, err)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	wantNoRecord(t, s, "nobody")
	wantNoKey(t, s, "nobody")
}

func testRecordRoundTrip(t *testing.T, s store.Store) {
	r := sealed("alice", "ciphertext-1", 0)
	putRecord(t, s, r)
	wantRecord(t, s, r)
}

func testReplaceRecord(t *testing.T, s store.Store) {
	putRecord(t, s, sealed("alice", "ciphertext-1", 0))
	r := sealed("alice", "a longer second ciphertext", time.Hour+time.Microsecond)
	putRecord(t, s, r)
	wantRecord(t, s, r)
}

func testDeleteRecord(t *testing.T, s store.Store) {
	putRecord(t, s, sealed("alice", "ciphertext-1", 0))
	if err := s.DeleteRecord(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	wantNoRecord(t, s, "alice")
	if err := s.DeleteRecord(context.Background(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteRecord = %v, want ErrNotFound", err)
	}
}

func testDeleteMissingRecord(t *testing.T, s store.Store) {
	if err := s.DeleteRecord(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteRecord(missing) = %v, want ErrNotFound", err)
	}
}

func testPutKeyFirstWins(t *testing.T, s store.Store) {
	first := key("alice", "wrapped-first")
	if got := putKey(t, s, first); !cmp.Equal(first, got) {
		t.Errorf("first PutKey returned (-want +got):\n%s", cmp.Diff(first, got))
	}
	second := store.Key{Subject: "alice", Wrapped: []byte("wrapped-second"), KEKID: "kek-2", Handle: []byte("other")}
	if got := putKey(t, s, second); !cmp.Equal(first, got) {
		t.Errorf("second PutKey returned (-want first +got):\n%s", cmp.Diff(first, got))
	}
	wantKey(t, s, first)
}

func testPutKeyConcurrent(t *testing.T, s store.Store) {
	const n = 16
	var (
		wg   sync.WaitGroup
		got  = make([]store.Key, n)
		errs = make([]error, n)
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = s.PutKey(context.Background(), key("alice", fmt.Sprintf("wrapped-%02d", i)))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutKey #%d: %v", i, err)
		}
	}
	winner := got[0]
	if !bytes.HasPrefix(winner.Wrapped, []byte("wrapped-")) {
		t.Fatalf("PutKey #0 returned %+v, not one of the keys put", winner)
	}
	for i, k := range got[1:] {
		if diff := cmp.Diff(winner, k); diff != "" {
			t.Errorf("PutKey #%d disagrees with #0 (-#0 +#%d):\n%s", i+1, i+1, diff)
		}
	}
	wantKey(t, s, winner)
}

func testDeleteKey(t *testing.T, s store.Store) {
	putKey(t, s, key("alice", "wrapped-1"))
	if err := s.DeleteKey(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	wantNoKey(t, s, "alice")
	if err := s.DeleteKey(context.Background(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteKey = %v, want ErrNotFound", err)
	}
	// A key can be created again after erasure; it is a new key.
	fresh := key("alice", "wrapped-2")
	if got := putKey(t, s, fresh); !cmp.Equal(fresh, got) {
		t.Errorf("PutKey after DeleteKey returned (-want +got):\n%s", cmp.Diff(fresh, got))
	}
}

func testDeleteMissingKey(t *testing.T, s store.Store) {
	if err := s.DeleteKey(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteKey(missing) = %v, want ErrNotFound", err)
	}
}

func testSubjectsIndependent(t *testing.T, s store.Store) {
	a, b := sealed("alice", "for alice", 0), sealed("bob", "for bob", time.Second)
	putRecord(t, s, a)
	putRecord(t, s, b)
	ka, kb := key("alice", "wrapped-alice"), key("bob", "wrapped-bob")
	putKey(t, s, ka)
	putKey(t, s, kb)

	a2 := sealed("alice", "alice again", time.Minute)
	putRecord(t, s, a2)
	wantRecord(t, s, b)

	if err := s.DeleteRecord(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteRecord(alice): %v", err)
	}
	if err := s.DeleteKey(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteKey(alice): %v", err)
	}
	wantNoRecord(t, s, "alice")
	wantNoKey(t, s, "alice")
	wantRecord(t, s, b)
	wantKey(t, s, kb)
}

// testKeyAndRecordIndependent checks that erasing a key leaves the record in
// place (crypto-shredding makes it unreadable, the store does not remove it)
// and that deleting a record leaves the key.
func testKeyAndRecordIndependent(t *testing.T, s store.Store) {
	r, k := sealed("alice", "for alice", 0), key("alice", "wrapped-alice")
	putRecord(t, s, r)
	putKey(t, s, k)
	if err := s.DeleteKey(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	wantRecord(t, s, r)

	putKey(t, s, k)
	if err := s.DeleteRecord(context.Background(), "alice"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	wantKey(t, s, k)
}

func allBytes() []byte {
	b := make([]byte, 0, 3*256)
	for i := range 256 {
		b = append(b, byte(i), 0, byte(255-i))
	}
	return b
}

func testBinaryBytes(t *testing.T, s store.Store) {
	b := allBytes()
	r := store.Sealed{Subject: "alice", Ciphertext: b, Updated: updated(0)}
	putRecord(t, s, r)
	wantRecord(t, s, r)

	k := store.Key{Subject: "alice", Wrapped: b, KEKID: "kek-1", Handle: []byte{0, 0, 1, 0, 0xff, 0}}
	putKey(t, s, k)
	wantKey(t, s, k)
}

func testLongSubject(t *testing.T, s store.Store) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
	long := strings.Repeat(alphabet, 2)[:128]
	other := long[:127] + "X"

	r := sealed(long, "long subject", 0)
	putRecord(t, s, r)
	wantRecord(t, s, r)
	wantNoRecord(t, s, other)

	k := key(long, "wrapped-long")
	putKey(t, s, k)
	wantKey(t, s, k)
	wantNoKey(t, s, other)
}

func testContextCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"PutRecord", func() error { return s.PutRecord(ctx, sealed("alice", "x", 0)) }},
		{"GetRecord", func() error { _, err := s.GetRecord(ctx, "alice"); return err }},
		{"DeleteRecord", func() error { return s.DeleteRecord(ctx, "alice") }},
		{"PutKey", func() error { _, err := s.PutKey(ctx, key("alice", "w")); return err }},
		{"GetKey", func() error { _, err := s.GetKey(ctx, "alice"); return err }},
		{"DeleteKey", func() error { return s.DeleteKey(ctx, "alice") }},
		{"ScanRecords", func() error { _, err := s.ScanRecords(ctx, "", 10); return err }},
		{"ScanKeys", func() error { _, err := s.ScanKeys(ctx, "", 10); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled context = %v, want context.Canceled", c.name, err)
		}
	}
	// Nothing was written.
	wantNoRecord(t, s, "alice")
	wantNoKey(t, s, "alice")
}

// testScan pages through 250 records and keys (ids whose order is the same
// under any collation) and checks that the pages cover every subject once,
// in ascending order, with records and keys in the same order.
func testScan(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	for i := 250; i >= 1; i-- { // written in reverse: order must come from the store
		id := fmt.Sprintf("s-%04d", i)
		putRecord(t, s, sealed(id, "ct-"+id, time.Duration(i)*time.Microsecond))
		if i%3 != 0 { // some subjects have no key (erased ones, say)
			putKey(t, s, key(id, "w-"+id))
		}
	}
	for i := 1; i <= 250; i++ {
		want = append(want, fmt.Sprintf("s-%04d", i))
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := s.ScanRecords(ctx, after, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 64 || pages > 10 {
			t.Fatalf("page %d has %d records (limit 64)", pages, len(page))
		}
		for _, r := range page {
			if diff := cmp.Diff(stored(sealed(r.Subject, "ct-"+r.Subject, 0)).Ciphertext, r.Ciphertext); diff != "" {
				t.Fatalf("record %s: ciphertext differs:\n%s", r.Subject, diff)
			}
			got = append(got, r.Subject)
		}
		after = page[len(page)-1].Subject
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("scanned subjects (-want +got):\n%s", diff)
	}
	var keys []string
	after = ""
	for {
		page, err := s.ScanKeys(ctx, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			if string(k.Wrapped) != "w-"+k.Subject {
				t.Fatalf("key %s: wrapped %q", k.Subject, k.Wrapped)
			}
			keys = append(keys, k.Subject)
		}
		after = page[len(page)-1].Subject
	}
	var wantKeys []string
	for i := 1; i <= 250; i++ {
		if i%3 != 0 {
			wantKeys = append(wantKeys, fmt.Sprintf("s-%04d", i))
		}
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Fatalf("scanned keys (-want +got):\n%s", diff)
	}
}

// testScanByteOrder: mixed case and punctuation sort by bytes, whatever
// the backend's locale.
func testScanByteOrder(t *testing.T, s store.Store) {
	ids := []string{"b", "B", "a-1", "a.1", "A_1", "a", "Z", "_z", "0"}
	for _, id := range ids {
		putRecord(t, s, sealed(id, "x", 0))
	}
	page, err := s.ScanRecords(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page {
		got = append(got, r.Subject)
	}
	want := slices.Sorted(slices.Values(ids))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("scan order is not byte order (-want +got):\n%s", diff)
	}
}

func testScanLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, limit := range []int{0, -1, store.MaxScan + 1} {
		if _, err := s.ScanRecords(ctx, "", limit); err == nil {
			t.Errorf("ScanRecords with limit %d accepted", limit)
		}
		if _, err := s.ScanKeys(ctx, "", limit); err == nil {
			t.Errorf("ScanKeys with limit %d accepted", limit)
		}
	}
	page, err := s.ScanRecords(ctx, "", 5)
	if err != nil || len(page) != 0 {
		t.Fatalf("scan of an empty store = %v, %v", page, err)
	}
}
