package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/store/storetest"
)

// dsn returns the test server's DSN, or skips the test without one.
func dsn(tb testing.TB) string {
	tb.Helper()
	d := os.Getenv("CLOVER_TEST_POSTGRES")
	if d == "" {
		tb.Skip("CLOVER_TEST_POSTGRES not set: skipping PostgreSQL tests (see .ci/start-postgres)")
	}
	return d
}

// uniqueSite returns a site name no other test uses.
func uniqueSite(prefix string) string {
	return fmt.Sprintf("%s-%016x", prefix, rand.Uint64())
}

// openSite opens site's store; at cleanup it drops the site's schemas and
// closes the store.
func openSite(tb testing.TB, site string) *Store {
	tb.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dsn(tb), site)
	if err != nil {
		tb.Fatalf("Open(%q): %v", site, err)
	}
	tb.Cleanup(func() {
		if err := s.Drop(ctx); err != nil {
			tb.Errorf("Drop: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	dsn(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openSite(t, uniqueSite("conf"))
	})
}

func TestSchemas(t *testing.T) {
	s := openSite(t, "ie-dublin-"+fmt.Sprintf("%x", rand.Uint32()))
	records, keys := s.Schemas()
	if !strings.HasPrefix(records, "clover_ie_dublin_") || keys != records+"_keys" {
		t.Errorf("Schemas() = %q, %q; want clover_ie_dublin_<suffix> and <records>_keys", records, keys)
	}
	for _, schema := range []string{records, keys} {
		if !schemaExists(t, s, schema) {
			t.Errorf("schema %s does not exist after Open", schema)
		}
	}
}

func schemaExists(t *testing.T, s *Store, schema string) bool {
	t.Helper()
	var n int
	err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n)
	if err != nil {
		t.Fatalf("query pg_namespace: %v", err)
	}
	return n == 1
}

// TestKeysApartFromRecords checks the layout: the records schema has no key
// table and the keys schema no records table.
func TestKeysApartFromRecords(t *testing.T) {
	s := openSite(t, uniqueSite("apart"))
	records, keys := s.Schemas()
	want := map[string][]string{
		records: {"clover_owner", "records", "schema_version"},
		keys:    {"clover_owner", "keys", "schema_version"},
	}
	for schema, tables := range want {
		if diff := cmp.Diff(tables, tablesOf(t, s, schema)); diff != "" {
			t.Errorf("tables of %s (-want +got):\n%s", schema, diff)
		}
	}
}

func tablesOf(t *testing.T, s *Store, schema string) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(),
		`SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`, schema)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return tables
}

func versions(t *testing.T, s *Store, schema string) []int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(),
		`SELECT version FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_version: %v", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("query schema_version: %v", err)
	}
	return vs
}

func TestMigrationIdempotent(t *testing.T) {
	ctx := context.Background()
	site := uniqueSite("idem")
	first := openSite(t, site)
	r := store.Sealed{Subject: "alice", Ciphertext: []byte("sealed"), Updated: time.UnixMicro(1_700_000_000_123_456).UTC()}
	if err := first.PutRecord(ctx, r); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}

	second, err := Open(ctx, dsn(t), site)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer second.Close()
	records, keys := second.Schemas()
	for _, schema := range []string{records, keys} {
		if diff := cmp.Diff([]int{1, 2}, versions(t, second, schema)); diff != "" {
			t.Errorf("%s schema_version after two Opens (-want +got):\n%s", schema, diff)
		}
	}
	got, err := second.GetRecord(ctx, "alice")
	if err != nil {
		t.Fatalf("GetRecord through second store: %v", err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("record through second store (-want +got):\n%s", diff)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	site := uniqueSite("newer")
	s := openSite(t, site)
	_, keys := s.Schemas()
	q := `INSERT INTO ` + pgx.Identifier{keys, "schema_version"}.Sanitize() + ` (version) VALUES (999)`
	if _, err := s.pool.Exec(ctx, q); err != nil {
		t.Fatalf("insert future version: %v", err)
	}
	if s2, err := Open(ctx, dsn(t), site); err == nil {
		s2.Close()
		t.Fatal("Open of a site at schema version 999 succeeded, want error")
	}
}

func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	d := dsn(t)
	site := uniqueSite("conc")
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(ctx, d, site)
		})
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() {
		dropped := false
		for _, s := range stores {
			if s == nil {
				continue
			}
			if !dropped {
				if err := s.Drop(ctx); err != nil {
					t.Errorf("Drop: %v", err)
				}
				dropped = true
			}
			s.Close()
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
	}
	records, keys := stores[0].Schemas()
	for _, schema := range []string{records, keys} {
		if diff := cmp.Diff([]int{1, 2}, versions(t, stores[0], schema)); diff != "" {
			t.Errorf("%s schema_version after concurrent Opens (-want +got):\n%s", schema, diff)
		}
	}
	k := store.Key{Subject: "alice", Wrapped: []byte("w"), KEKID: "kek-1", Handle: []byte("h")}
	if _, err := stores[1].PutKey(ctx, k); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	got, err := stores[3].GetKey(ctx, "alice")
	if err != nil {
		t.Fatalf("GetKey through another store: %v", err)
	}
	if diff := cmp.Diff(k, got); diff != "" {
		t.Errorf("key through another store (-want +got):\n%s", diff)
	}
}

func TestBadSiteName(t *testing.T) {
	bad := []string{
		"",
		"1dublin",
		"-dublin",
		"_dublin",
		"IE-Dublin",
		"ie dublin",
		"ie.dublin",
		"ie/dublin",
		`ie"; DROP SCHEMA public; --`,
		"ié-dublin",
		"a" + strings.Repeat("b", 41),
	}
	for _, site := range bad {
		// The name is rejected before any connection is attempted, so this
		// needs no server.
		s, err := Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable", site)
		if err == nil {
			s.Close()
			t.Errorf("Open(site %q) succeeded, want error", site)
			continue
		}
		if !strings.Contains(err.Error(), "invalid site name") {
			t.Errorf("Open(site %q) = %v, want an invalid site name error", site, err)
		}
	}
}

func TestSchemaNames(t *testing.T) {
	tests := []struct{ site, records, keys string }{
		{"ie-dublin", "clover_ie_dublin", "clover_ie_dublin_keys"},
		{"a", "clover_a", "clover_a_keys"},
		{"de_berlin-2", "clover_de_berlin_2", "clover_de_berlin_2_keys"},
		{"a" + strings.Repeat("b", 40), "clover_a" + strings.Repeat("b", 40), "clover_a" + strings.Repeat("b", 40) + "_keys"},
	}
	for _, tc := range tests {
		records, keys, err := schemaNames(tc.site)
		if err != nil {
			t.Errorf("schemaNames(%q): %v", tc.site, err)
			continue
		}
		if records != tc.records || keys != tc.keys {
			t.Errorf("schemaNames(%q) = %q, %q; want %q, %q", tc.site, records, keys, tc.records, tc.keys)
		}
	}
}

// TestSiteCollision checks that two site names mapping to one schema cannot
// share it.
func TestSiteCollision(t *testing.T) {
	ctx := context.Background()
	base := fmt.Sprintf("coll%x", rand.Uint32())
	openSite(t, base+"-x")
	openSite(t, base)
	for _, other := range []string{base + "_x", base + "-keys"} {
		s, err := Open(ctx, dsn(t), other)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) after Opens of %q and %q succeeded, want error", other, base+"-x", base)
			continue
		}
		t.Logf("Open(%q): %v", other, err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", "ie-dublin")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded, want error")
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open error %v is ErrNotFound", err)
	}
}

const benchRows = 10_000

// prefill writes benchRows records of 1 KB with COPY, for benchmarks.
func prefill(b *testing.B, s *Store) {
	b.Helper()
	c := make([]byte, 1024)
	now := time.Now()
	rows := make([][]any, benchRows)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("subject-%06d", i), c, now}
	}
	_, err := s.pool.CopyFrom(context.Background(), pgx.Identifier{s.records, "records"},
		[]string{"subject", "ciphertext", "updated"}, pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatalf("prefill: %v", err)
	}
}

func BenchmarkPutRecord(b *testing.B) {
	s := openSite(b, uniqueSite("bench"))
	ctx := context.Background()
	r := store.Sealed{Ciphertext: make([]byte, 1024), Updated: time.Now()}
	i := 0
	for b.Loop() {
		r.Subject = fmt.Sprintf("subject-%06d", i%benchRows)
		if err := s.PutRecord(ctx, r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetRecord(b *testing.B) {
	s := openSite(b, uniqueSite("bench"))
	prefill(b, s)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.GetRecord(ctx, fmt.Sprintf("subject-%06d", i%benchRows)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetRecord(ctx, fmt.Sprintf("subject-%06d", i%benchRows)); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

func BenchmarkGetKey(b *testing.B) {
	s := openSite(b, uniqueSite("bench"))
	ctx := context.Background()
	k := store.Key{Subject: "alice", Wrapped: make([]byte, 60), KEKID: "kek-1", Handle: make([]byte, 16)}
	if _, err := s.PutKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.GetKey(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}
