package gateway

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/store/postgres"
	"github.com/cloverenclave/clover/store/sqlite"
	"github.com/jackc/pgx/v5"
)

// Distinctive values: if any of them shows up in a storage file, plaintext
// leaked.
var secrets = []string{"liadan.oshea@example.ie", "Liadan O'Shea", "IE-PPS-7734519TA", "bjorn.haugen@example.no", "Bjorn Haugen", "NO-FNR-0405198812345"}

const (
	ieBody = `{"country":"IE","fields":{"email":"liadan.oshea@example.ie","full_name":"Liadan O'Shea","national_id":"IE-PPS-7734519TA"}}`
	noBody = `{"country":"NO","fields":{"email":"bjorn.haugen@example.no","full_name":"Bjorn Haugen","national_id":"NO-FNR-0405198812345"}}`
)

// siteBytes returns everything a site's storage holds, as raw bytes.
type siteBytes func(t *testing.T, site string) []byte

func sqliteBytes(h *harness) siteBytes {
	return func(t *testing.T, site string) []byte {
		var all []byte
		dir := filepath.Join(h.dir, "sites", site)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
}

func checkResidencyAndAtRest(t *testing.T, h *harness, raw siteBytes) {
	t.Helper()
	ingest := h.token("ingest")
	for id, body := range map[string]string{"liadan-1": ieBody, "bjorn-1": noBody} {
		if r := h.do("PUT", "/v1/subjects/"+id, ingest, body); r.status != 201 {
			t.Fatalf("PUT %s = %d %s", id, r.status, r.body)
		}
	}
	ctx := context.Background()
	ieRec, err := h.raw["ie-dublin"].GetRecord(ctx, "liadan-1")
	if err != nil {
		t.Fatal(err)
	}
	noRec, err := h.raw["no-hamar"].GetRecord(ctx, "bjorn-1")
	if err != nil {
		t.Fatal(err)
	}
	ie, no := raw(t, "ie-dublin"), raw(t, "no-hamar")
	for _, s := range secrets {
		for site, b := range map[string][]byte{"ie-dublin": ie, "no-hamar": no} {
			if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(hex.EncodeToString([]byte(s)))) {
				t.Errorf("plaintext %q found in the storage of %s", s, site)
			}
		}
	}
	// Each subject's id and ciphertext are at its home and nowhere else.
	if !bytes.Contains(ie, []byte("liadan-1")) || !bytes.Contains(no, []byte("bjorn-1")) {
		t.Fatal("the search cannot see stored data: a subject's id is missing from its own home")
	}
	if bytes.Contains(ie, []byte("bjorn-1")) || bytes.Contains(ie, noRec.Ciphertext[1:33]) {
		t.Error("the Norwegian subject's data is at ie-dublin")
	}
	if bytes.Contains(no, []byte("liadan-1")) || bytes.Contains(no, ieRec.Ciphertext[1:33]) {
		t.Error("the Irish subject's data is at no-hamar")
	}
	if _, err := h.raw["ie-dublin"].GetKey(ctx, "bjorn-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ie-dublin holds a key for the Norwegian subject: %v", err)
	}
}

func TestResidencyAndEncryptionAtRestSQLite(t *testing.T) {
	h := newHarness(t)
	checkResidencyAndAtRest(t, h, sqliteBytes(h))
}

func TestResidencyAndEncryptionAtRestPostgres(t *testing.T) {
	dsn := os.Getenv("CLOVER_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("CLOVER_TEST_POSTGRES not set: skipping PostgreSQL tests (see .ci/start-postgres)")
	}
	ctx := context.Background()
	suffix := fmt.Sprintf("-%d", os.Getpid())
	h := newHarnessWith(t, func(site string) store.Store {
		st, err := postgres.Open(ctx, dsn, "t"+strings.ReplaceAll(site, "-", "")+suffix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Drop(context.Background()) })
		return st
	})
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	raw := func(t *testing.T, site string) []byte {
		records, keysSchema := h.raw[site].(*postgres.Store).Schemas()
		var all []byte
		for _, q := range []string{
			"SELECT subject::bytea || ciphertext FROM " + pgx.Identifier{records, "records"}.Sanitize(),
			"SELECT subject::bytea || wrapped || kek_id::bytea || handle FROM " + pgx.Identifier{keysSchema, "keys"}.Sanitize(),
		} {
			q = strings.Replace(q, "subject::bytea", "convert_to(subject, 'UTF8')", 1)
			q = strings.Replace(q, "kek_id::bytea", "convert_to(kek_id, 'UTF8')", 1)
			rows, err := conn.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
		return all
	}
	checkResidencyAndAtRest(t, h, raw)
}

// TestBackupTakenBeforeErasureIsUnreadable copies a site's records database,
// erases the subject, and shows the copy cannot be decrypted any more.
func TestBackupTakenBeforeErasureIsUnreadable(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"liadan-1", "other-1"} {
		if r := h.do("PUT", "/v1/subjects/"+id, h.token("ingest"), ieBody); r.status != 201 {
			t.Fatalf("PUT = %d %s", r.status, r.body)
		}
	}
	siteDir := filepath.Join(h.dir, "sites", "ie-dublin")
	backup := t.TempDir()
	for _, name := range []string{"records.db", "records.db-wal"} {
		copyFile(t, filepath.Join(siteDir, name), filepath.Join(backup, name))
	}
	if r := h.do("DELETE", "/v1/subjects/liadan-1", h.token("erasure"), ""); r.status != 200 {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	// Restore: the backup's records beside the live key database.
	h.stores["ie-dublin"].Close()
	for _, name := range []string{"keys.db", "keys.db-wal"} {
		copyFile(t, filepath.Join(siteDir, name), filepath.Join(backup, name))
	}
	restored, err := sqlite.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	ctx := context.Background()
	rec, err := restored.GetRecord(ctx, "liadan-1")
	if err != nil {
		t.Fatalf("the backup does not hold the record, so the test proves nothing: %v", err)
	}
	if _, err := restored.GetKey(ctx, "liadan-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the data key survived erasure: %v", err)
	}
	// No key the site still has opens it.
	remaining := h.allKeys(t, "ie-dublin")
	if len(remaining) != 1 {
		t.Fatalf("the site holds %d data keys, want 1 (other-1's)", len(remaining))
	}
	for _, kb := range remaining {
		if _, err := keys.Open(kb, rec.Ciphertext, keys.RecordAAD("ie-dublin", "liadan-1")); err == nil {
			t.Fatal("the erased record opened with a remaining key")
		}
	}
	if bytes.Contains(rec.Ciphertext, []byte("liadan.oshea")) {
		t.Fatal("the backup holds plaintext")
	}
}

// allKeys unwraps every data key still held at a site.
func (h *harness) allKeys(t *testing.T, site string) [][]byte {
	t.Helper()
	ctx := context.Background()
	var out [][]byte
	for _, id := range []string{"liadan-1", "bjorn-1", "other-1"} {
		st, err := sqlite.Open(filepath.Join(h.dir, "sites", site))
		if err != nil {
			t.Fatal(err)
		}
		k, err := st.GetKey(ctx, id)
		st.Close()
		if err != nil {
			continue
		}
		dk, err := h.keks[site].Unwrap(k.Wrapped, keys.KeyAAD(site, id))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dk)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
