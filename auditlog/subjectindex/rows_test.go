package subjectindex

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// words returns the words table, by id.
func wordsOf(t *testing.T, x *Index) []string {
	t.Helper()
	rows, err := x.db.Query(`SELECT id, word FROM words ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int
		var w string
		if err := rows.Scan(&id, &w); err != nil {
			t.Fatal(err)
		}
		if id != len(out) {
			t.Fatalf("words: id %d at position %d", id, len(out))
		}
		out = append(out, w)
	}
	return out
}

func listAll(t *testing.T, x *Index, subject string) []Item {
	t.Helper()
	got, err := x.List(context.Background(), subject, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestFormsRoundTrip stores every form with a code, and forms without one
// (written inline), and lists them back as they were.
func TestFormsRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	it := item(1, subjA)
	it.Fields = nil
	for _, form := range []string{"raw", "pseudonym", "generalised", "masked", "withheld", "", "RAW", "raw ", "redacted", "généralisé", strings.Repeat("f", 300)} {
		it.Fields = append(it.Fields, Field{Name: "email", Form: form})
	}
	if err := x.Add(ctx, it); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Item{it}, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// The five forms with a code take one byte with the name's reference;
	// the others are written out.
	var fields []byte
	if err := x.db.QueryRow(`SELECT fields FROM accesses WHERE log_index = 1`).Scan(&fields); err != nil {
		t.Fatal(err)
	}
	ref := x.words.Load().ref("email")
	if ref == 0 || ref > 15 {
		t.Fatalf("email's reference is %d", ref)
	}
	for code, form := range forms {
		if formCode(form) != uint64(code) {
			t.Errorf("formCode(%q) = %d, want %d", form, formCode(form), code)
		}
		if !slices.Contains(fields, byte(ref<<formBits|uint64(code))) {
			t.Errorf("fields blob %x lacks the byte of email, %s", fields, form)
		}
	}
	if strings.Contains(string(fields), "masked") || !strings.Contains(string(fields), "redacted") {
		t.Errorf("fields blob %q: want the coded forms as codes and the others inline", fields)
	}
}

// TestAwkwardWordsRoundTrip stores names and roles that are not ASCII, not
// valid UTF-8, empty, at and beyond the length that is interned, and many
// fields, and lists back what the JSON rows of earlier versions did.
func TestAwkwardWordsRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	atLimit, beyond := strings.Repeat("é", maxWordLen/2), strings.Repeat("n", maxWordLen+1)
	it := item(1, subjA)
	it.Roles = []string{"", "日本語", atLimit, beyond, "bad\xffutf8", "bad\uFFFDutf8", "a\x00b", `"quoted"`, "日本語"}
	it.Fields = []Field{{Name: "", Form: "raw"}, {Name: "città", Form: "masked"}, {Name: atLimit, Form: "withheld"},
		{Name: beyond, Form: "raw"}, {Name: "x\xc3", Form: "y\xe2\x82"}, {Name: "\u2028<&>", Form: "pseudonym"}}
	for i := range 500 {
		it.Fields = append(it.Fields, Field{Name: fmt.Sprintf("field_%d", i%300), Form: forms[i%len(forms)]})
	}
	other := item(2, subjA)
	other.Roles, other.Fields = nil, nil
	if err := x.Add(ctx, it, other); err != nil {
		t.Fatal(err)
	}
	want := it
	want.Roles = slices.Clone(it.Roles)
	want.Roles[4] = "bad\uFFFDutf8" // as encoding/json stored it
	want.Fields = slices.Clone(it.Fields)
	want.Fields[4] = Field{Name: "x\uFFFD", Form: "y\uFFFD\uFFFD"}
	wantOther := other
	wantOther.Roles, wantOther.Fields = []string{}, []Field{} // as the JSON rows listed them
	if diff := cmp.Diff([]Item{want, wantOther}, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	words := wordsOf(t, x)
	if !slices.Contains(words, atLimit) || slices.Contains(words, beyond) {
		t.Errorf("words: a word of %d bytes should be interned and one of %d not", len(atLimit), len(beyond))
	}
	if !slices.Contains(words, "bad\uFFFDutf8") || slices.Contains(words, "bad\xffutf8") {
		t.Errorf("words %q: want the valid form of a word only", words)
	}
	// Roles "", 日本語, atLimit, bad\uFFFDutf8, a\x00b and "quoted"; names città,
	// x\uFFFD and \u2028<&> and the 300 field_i; each once.
	if len(words) != 309 || len(words) != len(slices.Compact(slices.Sorted(slices.Values(words)))) {
		t.Errorf("words %q: want 309 distinct", words)
	}
	// Reopened, the words are read from the file.
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y := open(t, x.path)
	if diff := cmp.Diff([]Item{want, wantOther}, listAll(t, y, subjA)); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
}

// TestWordsTableFull fills the words table: later words are written
// inline, and still listed as they were.
func TestWordsTableFull(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	var items []Item
	for i := range maxWords + 10 {
		it := item(uint64(i), subjA)
		it.Roles = []string{fmt.Sprintf("role-%d", i)}
		it.Fields = []Field{{Name: "email", Form: "raw"}}
		items = append(items, it)
	}
	// In two batches: the table fills up in the first.
	if err := x.Add(ctx, items[:maxWords-5]...); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(ctx, items[maxWords-5:]...); err != nil {
		t.Fatal(err)
	}
	words := wordsOf(t, x)
	if len(words) != maxWords {
		t.Fatalf("%d words, want %d", len(words), maxWords)
	}
	if n := len(x.words.Load().words); n != maxWords {
		t.Errorf("%d words in memory, want %d", n, maxWords)
	}
	if diff := cmp.Diff(items, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// TestWordsOfAnotherConnection has two Index values on one file, as two
// processes would: each reads the words the other added, and neither adds
// a word twice.
func TestWordsOfAnotherConnection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "subjects.db")
	a, b := open(t, path), open(t, path)
	one := item(1, subjA)
	one.Fields = []Field{{Name: "only_a", Form: "raw"}}
	if err := a.Add(ctx, one); err != nil {
		t.Fatal(err)
	}
	// b lists a row with a word it has not loaded.
	if diff := cmp.Diff([]Item{one}, listAll(t, b, subjA)); diff != "" {
		t.Errorf("b's List (-want +got):\n%s", diff)
	}
	// a adds another word; b, not knowing it, adds it too.
	two := item(2, subjA)
	two.Fields = []Field{{Name: "both", Form: "masked"}}
	if err := a.Add(ctx, two); err != nil {
		t.Fatal(err)
	}
	three := item(3, subjA)
	three.Fields = []Field{{Name: "both", Form: "raw"}, {Name: "only_b", Form: "raw"}}
	if err := b.Add(ctx, three); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*Index{"a": a, "b": b} {
		if diff := cmp.Diff([]Item{one, two, three}, listAll(t, x, subjA)); diff != "" {
			t.Errorf("%s's List (-want +got):\n%s", name, diff)
		}
	}
	if diff := cmp.Diff([]string{"support", "only_a", "both", "only_b"}, wordsOf(t, a)); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
}

// TestFailedAddForgetsWords fails an Add after it added words to the table:
// the words go with the transaction, and are not used by later Adds.
func TestFailedAddForgetsWords(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	if _, err := x.db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON accesses WHEN NEW.status = 999
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	bad := item(1, subjA)
	bad.Status, bad.Fields = 999, []Field{{Name: "first", Form: "raw"}}
	if err := x.Add(ctx, bad); err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("Add = %v, want the trigger's error", err)
	}
	if _, err := x.db.Exec(`DROP TRIGGER fail`); err != nil {
		t.Fatal(err)
	}
	if n := len(x.words.Load().words); n != 0 {
		t.Fatalf("%d words in memory after a failed Add", n)
	}
	if words := wordsOf(t, x); len(words) != 0 {
		t.Fatalf("words %q after a failed Add", words)
	}
	second := item(2, subjA)
	second.Fields = []Field{{Name: "second", Form: "raw"}}
	first := item(3, subjA)
	first.Fields = []Field{{Name: "first", Form: "raw"}}
	if err := x.Add(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(ctx, first); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Item{second, first}, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"support", "second", "first"}, wordsOf(t, x)); diff != "" {
		t.Errorf("words (-want +got):\n%s", diff)
	}
}

// TestConcurrentAddList adds items with new words from several goroutines
// while others list them (run with -race).
func TestConcurrentAddList(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	const writers, batches, batch = 4, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	var want []Item
	for w := range writers {
		var mine [][]Item
		for b := range batches {
			var items []Item
			for i := range batch {
				idx := uint64((w*batches+b)*batch + i)
				it := item(idx, subjA)
				it.Roles = []string{fmt.Sprintf("role-%d", i%7), "shared"}
				it.Fields = []Field{{Name: fmt.Sprintf("f-%d-%d", b, i%5), Form: forms[i%len(forms)]}, {Name: "email", Form: "odd"}}
				items = append(items, it)
			}
			mine = append(mine, items)
			want = append(want, items...)
		}
		wg.Go(func() {
			for _, items := range mine {
				if err := x.Add(ctx, items...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				if _, err := x.List(ctx, subjA, 1000, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	slices.SortFunc(want, func(a, b Item) int { return int(a.Index) - int(b.Index) })
	if diff := cmp.Diff(want, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	words := wordsOf(t, x)
	if len(words) != 1+7+1+batches*5 { // support, role-0..6, shared, f-b-i
		t.Errorf("%d words, want %d: %q", len(words), 1+7+1+batches*5, words)
	}
}

// TestListCorruptRow checks that List reports a row it cannot decode, by
// its log index, rather than return something else.
func TestListCorruptRow(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	if err := x.Add(ctx, item(7, subjA)); err != nil {
		t.Fatal(err)
	}
	var fields []byte
	if err := x.db.QueryRow(`SELECT fields FROM accesses WHERE log_index = 7`).Scan(&fields); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		blob []byte
		want error
	}{
		{"truncated", fields[:len(fields)-1], errMalformed},
		{"trailing byte", append(slices.Clone(fields), 0), errMalformed},
		{"bad form code", []byte{1, 1<<formBits | 5}, errMalformed},
		{"unknown word", []byte{1, 9 << formBits}, errUnknownWord},
		{"count beyond the blob", []byte{5, 0}, errMalformed},
		{"inline name not UTF-8", []byte{1, byte(formRaw), 1, 0xff}, errMalformed},
	} {
		if _, err := x.db.Exec(`UPDATE accesses SET fields = ? WHERE log_index = 7`, c.blob); err != nil {
			t.Fatal(err)
		}
		_, err := x.List(ctx, subjA, 10, 0)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "item 7") {
			t.Errorf("%s: List = %v, want %v naming item 7", c.name, err, c.want)
		}
	}
}

// FuzzRowsRoundTrip checks that the blobs of any roles and fields decode
// to them (made valid UTF-8), whether their words are interned or not.
func FuzzRowsRoundTrip(f *testing.F) {
	f.Add("email", "masked", "support")
	f.Add("", "", "")
	f.Add("città\xff", "raw ", strings.Repeat("r", 100))
	f.Fuzz(func(t *testing.T, name, form, role string) {
		fields := []Field{{Name: name, Form: form}, {Name: "email", Form: form}, {Name: name, Form: "raw"}}
		roles := []string{role, "support", role}
		want := []Field{{Name: validUTF8(name), Form: validUTF8(form)}, {Name: "email", Form: validUTF8(form)}, {Name: validUTF8(name), Form: "raw"}}
		for _, d := range []*dict{emptyDict, emptyDict.with("support", "email", validUTF8(name), validUTF8(role))} {
			fb, _ := appendFields(nil, d, fields)
			gotFields, err := decodeFields(fb, d)
			if err != nil {
				t.Fatalf("decodeFields(appendFields(%q)) = %v", fields, err)
			}
			if diff := cmp.Diff(want, gotFields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			rb, _ := appendRoles(nil, d, roles)
			gotRoles, err := decodeRoles(rb, d)
			if err != nil {
				t.Fatalf("decodeRoles(appendRoles(%q)) = %v", roles, err)
			}
			if diff := cmp.Diff([]string{validUTF8(role), "support", validUTF8(role)}, gotRoles); diff != "" {
				t.Errorf("roles (-want +got):\n%s", diff)
			}
		}
	})
}

// FuzzDecode feeds arbitrary blobs to the decoders: they must not panic,
// and what they accept must encode to a blob that decodes to the same.
func FuzzDecode(f *testing.F) {
	d := emptyDict.with("support", "email", "full_name")
	fb, _ := appendFields(nil, d, []Field{{"email", "masked"}, {"city", "odd"}})
	rb, _ := appendRoles(nil, d, []string{"support", "ops"})
	f.Add(fb)
	f.Add(rb)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, blob []byte) {
		if fields, err := decodeFields(blob, d); err == nil {
			again, _ := appendFields(nil, d, fields)
			back, err := decodeFields(again, d)
			if err != nil || !slices.Equal(fields, back) {
				t.Errorf("fields %q: re-encoded and decoded to %q, %v", fields, back, err)
			}
		}
		if roles, err := decodeRoles(blob, d); err == nil {
			again, _ := appendRoles(nil, d, roles)
			back, err := decodeRoles(again, d)
			if err != nil || !slices.Equal(roles, back) {
				t.Errorf("roles %q: re-encoded and decoded to %q, %v", roles, back, err)
			}
		}
	})
}
