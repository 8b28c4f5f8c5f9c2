package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store/sqlite"
)

// sqliteVault is a vault over SQLite holding synthetic subjects 1 to n
// (those the enclave accepts), written through Put.
func sqliteVault(b *testing.B, n int) *Vault {
	b.Helper()
	enc, err := enclave.New(enclave.Default())
	if err != nil {
		b.Fatal(err)
	}
	sch, err := schema.New(schema.Default())
	if err != nil {
		b.Fatal(err)
	}
	var sites []Site
	for i, s := range enc.Sites() {
		st, err := sqlite.Open(filepath.Join(b.TempDir(), s.Name))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		kek, _ := keys.NewFileKEK(bytes.Repeat([]byte{byte(i + 1)}, 32), rand.Reader)
		sites = append(sites, Site{Name: s.Name, Store: st, KEK: kek})
	}
	v, err := New(enc, sch, sites)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := putSubjects(v, 1, n); err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkScan: Scan (fresh records) and ScanMap (reused slots) over
// SQLite; one op is the whole store.
func BenchmarkScan(b *testing.B) {
	const n = 2000
	v := sqliteVault(b, n)
	ctx := context.Background()
	b.Run("Scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Scan(ctx, func(Record) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
	b.Run("ScanMap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			err := ScanMap(ctx, v, ScanOptions{}, func(*Record, *struct{}) error { return nil }, func(*Record, *struct{}) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	})
}
