package subjectindex

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// BenchmarkLayout measures table layouts the index could move to, against
// BenchmarkAdd (the current one), with the same load: items of 100,000
// random subjects. Both candidates are a WITHOUT ROWID table keyed by
// (epoch, pseudonym prefix, log index), written a whole epoch (65,536
// items) per transaction in key order, so that SQLite appends at the right
// edge of its B-tree:
//
//   - columns: the eleven columns of format 1 (plus the key's two);
//   - packed: everything but the key in one blob of 120 bytes (a row of
//     formats 2 and 3, as Add now writes it, is 33 in this load).
//
// The index has taken the packed row (formats 2 and 3) but not the table:
// it is still keyed by log index, with the by-subject index beside it, and
// written as items come. So packed against BenchmarkAdd is what the
// key-ordered table would save, at the cost of an index that lags by up to
// an epoch. Not used by the index: it informs the choice of its next
// layout (docs/performance.md).
func BenchmarkLayout(b *testing.B) {
	b.Run("columns", func(b *testing.B) {
		benchLayout(b, `subject TEXT NOT NULL, time INTEGER NOT NULL, kind TEXT NOT NULL, decision TEXT NOT NULL,
			actor_type TEXT NOT NULL, roles BLOB NOT NULL, country TEXT NOT NULL, purpose TEXT NOT NULL,
			fields BLOB NOT NULL, status INTEGER NOT NULL`,
			func(subject string) []any {
				return []any{subject, int64(1e15), "decision", "allow", "Service", []byte{1, 2}, "IE", "service", make([]byte, 24), 200}
			})
	})
	b.Run("packed", func(b *testing.B) {
		payload := make([]byte, 120)
		benchLayout(b, `payload BLOB NOT NULL`, func(string) []any { return []any{payload} })
	})
}

func benchLayout(b *testing.B, columns string, values func(subject string) []any) {
	const subjects, epoch, perInsert = 100_000, 1 << epochBits, 64
	ctx := context.Background()
	x, err := Open(filepath.Join(b.TempDir(), "subjects.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	if _, err := x.db.Exec(`CREATE TABLE layout (epoch INTEGER NOT NULL, prefix TEXT NOT NULL, log_index INTEGER NOT NULL, ` +
		columns + `, PRIMARY KEY (epoch, prefix, log_index)) WITHOUT ROWID, STRICT`); err != nil {
		b.Fatal(err)
	}
	cols := 3 + len(values(""))
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	insert := `INSERT INTO layout VALUES ` + strings.TrimSuffix(strings.Repeat(row+",", perInsert), ",")

	rng := rand.New(rand.NewPCG(1, 2))
	names := randomPseudonyms(rng, subjects)
	type item struct {
		subject string
		index   uint64
	}
	var next uint64
	writeEpoch := func() {
		items := make([]item, epoch)
		for i := range items {
			items[i] = item{names[rng.IntN(subjects)], next}
			next++
		}
		slices.SortFunc(items, func(a, c item) int {
			if r := strings.Compare(a.subject[:16], c.subject[:16]); r != 0 {
				return r
			}
			return int(a.index - c.index)
		})
		tx, err := x.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback()
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		args := make([]any, 0, perInsert*cols)
		for i, it := range items {
			args = append(args, int64(it.index>>epochBits), it.subject[:16], int64(it.index))
			args = append(args, values(it.subject)...)
			if (i+1)%perInsert == 0 {
				if _, err := stmt.ExecContext(ctx, args...); err != nil {
					b.Fatal(err)
				}
				args = args[:0]
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	for range 4 { // an index of a few epochs already
		writeEpoch()
	}
	b.ResetTimer()
	for range b.N {
		writeEpoch()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*epoch), "µs/item")
}
