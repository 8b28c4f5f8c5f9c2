package vault

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cloverenclave/clover/enclave"
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

func BenchmarkScan(b *testing.B) {
	f := newFixture(&testing.T{}, enclave.Default())
	ctx := context.Background()
	const n = 5000
	for i := range n {
		f.v.Put(ctx, fmt.Sprintf("s-%05d", i), "IE", fields("email", `"a@example.ie"`, "interests", `"hurling"`,
			"birth_date", `"1990-01-02"`, "full_name", `"Aoife Byrne"`, "phone", `"+353 87 123 4567"`))
	}
	b.ResetTimer()
	for b.Loop() {
		if err := f.v.Scan(ctx, func(Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
