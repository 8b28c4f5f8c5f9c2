package subjectindex

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// storedRow returns the row blob of the item at idx.
func storedRow(t *testing.T, x *Index, idx uint64) []byte {
	t.Helper()
	var row []byte
	if err := x.db.QueryRow(`SELECT row FROM access_rows WHERE log_index = ?`, int64(idx)).Scan(&row); err != nil {
		t.Fatal(err)
	}
	return row
}

// rowFields returns the fields blob that ends a row blob.
func rowFields(t *testing.T, row []byte, d *dict) []byte {
	t.Helper()
	r := blobReader{b: row}
	if err := r.scalars(new(Item)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.roles(d); err != nil {
		t.Fatal(err)
	}
	return r.b
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
	fields := rowFields(t, storedRow(t, x, 1), x.words.Load())
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
	if _, err := x.db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON access_rows WHEN NEW.log_index = 1
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	bad := item(1, subjA)
	bad.Fields = []Field{{Name: "first", Form: "raw"}}
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
	row := storedRow(t, x, 7)
	fields := rowFields(t, row, x.words.Load())
	// withFields is the row with another fields blob.
	withFields := func(b ...byte) []byte {
		return append(slices.Clone(row[:len(row)-len(fields)]), b...)
	}
	for _, c := range []struct {
		name string
		row  []byte
		want error
	}{
		{"truncated", row[:len(row)-1], errMalformed},
		{"truncated in the time", row[:3], errMalformed},
		{"trailing byte", append(slices.Clone(row), 0), errMalformed},
		{"head beyond the codes", append([]byte{1 << (3 * codeBits)}, row[1:]...), errMalformed},
		{"decision code without a meaning", append([]byte{byte(len(decisions)) << codeBits}, row[1:]...), errMalformed},
		{"bad form code", withFields(1, 1<<formBits|5), errMalformed},
		{"unknown word", withFields(1, 9<<formBits), errUnknownWord},
		{"count beyond the blob", withFields(5, 0), errMalformed},
		{"inline name not UTF-8", withFields(1, byte(formRaw), 1, 0xff), errMalformed},
	} {
		if _, err := x.db.Exec(`UPDATE access_rows SET row = ? WHERE log_index = 7`, c.row); err != nil {
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

// TestRowKnownAnswer pins the row encoding: a row with every value coded,
// and one with every value inline.
func TestRowKnownAnswer(t *testing.T) {
	d := emptyDict.with("support", "email")
	for _, c := range []struct {
		name string
		it   Item
		hex  string
	}{
		{"coded", Item{Time: time.UnixMicro(1), Kind: "decision", Decision: "allow", ActorType: "Employee",
			Roles: []string{"support"}, Country: "IE", Purpose: "care", Fields: []Field{{"email", "masked"}}, Status: 200},
			"00" + "02" + "9003" + "024945" + "0463617265" + "0101" + "0113"},
		{"inline", Item{Time: time.UnixMicro(-1), Kind: "rehome", Decision: "", ActorType: "robot",
			Roles: []string{"ops"}, Fields: []Field{{"city", "odd"}}, Status: -1},
			"3f" + "067265686f6d65" + "00" + "05726f626f74" + "01" + "01" + "00" + "00" + "0100036f7073" + "0107046369747903" + "6f6464"},
		{"empty", Item{Time: time.UnixMicro(0), Kind: "erase", Decision: "deny", ActorType: "Service"},
			"16" + "00" + "00" + "00" + "00" + "00" + "00"},
	} {
		row, _ := appendRow(nil, d, &c.it)
		if got := hex.EncodeToString(row); got != c.hex {
			t.Errorf("%s: appendRow = %s, want %s", c.name, got, c.hex)
		}
		got, err := decodeRow(row, d)
		if err != nil {
			t.Fatalf("%s: decodeRow = %v", c.name, err)
		}
		if diff := cmp.Diff(normalised(c.it), got); diff != "" {
			t.Errorf("%s: decodeRow (-want +got):\n%s", c.name, diff)
		}
	}
}

// TestRowValuesRoundTrip stores kinds, decisions and actor types with a
// code and without, and values that are not valid UTF-8, awkward times
// and statuses: List returns them byte for byte, as the TEXT and INTEGER
// columns of format 1 did.
func TestRowValuesRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	var items []Item
	awkward := []string{"", "Decision", "allow ", "bad\xffbytes", "a\x00b", strings.Repeat("z", 300)}
	for i, v := range append(append(append(kinds[:], decisions[:]...), actorTypes[:]...), awkward...) {
		it := item(uint64(i), subjA)
		it.Kind, it.Decision, it.ActorType, it.Country, it.Purpose = v, v, v, v, v
		items = append(items, it)
	}
	for i, tm := range []time.Time{{}, time.Unix(-1, 0), time.UnixMicro(math.MaxInt64), time.UnixMicro(math.MinInt64), t0.In(time.FixedZone("x", 3600))} {
		it := item(uint64(100+i), subjA)
		it.Time = tm
		items = append(items, it)
	}
	for i, status := range []int{0, -1, 599, math.MaxInt64, math.MinInt64} {
		it := item(uint64(200+i), subjA)
		it.Status = status
		items = append(items, it)
	}
	if err := x.Add(ctx, items...); err != nil {
		t.Fatal(err)
	}
	want := make([]Item, len(items))
	for i, it := range items {
		want[i] = normalised(it)
	}
	if diff := cmp.Diff(want, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// normalised is it as the index lists it: its time in whole microseconds,
// UTC, no nil roles or fields, and roles, names and forms valid UTF-8.
func normalised(it Item) Item {
	it.Time = time.UnixMicro(it.Time.UnixMicro()).UTC()
	roles := []string{}
	for _, r := range it.Roles {
		roles = append(roles, validUTF8(r))
	}
	fields := []Field{}
	for _, f := range it.Fields {
		fields = append(fields, Field{Name: validUTF8(f.Name), Form: validUTF8(f.Form)})
	}
	it.Roles, it.Fields = roles, fields
	return it
}

// FuzzRowRoundTrip checks that a row of any item decodes to the item as
// the index lists it, whether its words are interned or not.
func FuzzRowRoundTrip(f *testing.F) {
	f.Add("decision", "allow", "Employee", "IE", "support", int64(1e15), 200, "support", "email", "masked")
	f.Add("", "", "", "", "", int64(0), 0, "", "", "")
	f.Add("rehome\xff", "deny ", "robot", "\x00", "p", int64(math.MinInt64), -1, "r\xc3", strings.Repeat("n", 100), "odd")
	f.Fuzz(func(t *testing.T, kind, decision, actor, country, purpose string, micros int64, status int, role, name, form string) {
		it := Item{Time: time.UnixMicro(micros), Kind: kind, Decision: decision, ActorType: actor, Country: country,
			Purpose: purpose, Status: status, Roles: []string{role, "support"}, Fields: []Field{{name, form}, {"email", "raw"}}}
		for _, d := range []*dict{emptyDict, emptyDict.with("support", "email", validUTF8(name), validUTF8(role))} {
			row, _ := appendRow(nil, d, &it)
			got, err := decodeRow(row, d)
			if err != nil {
				t.Fatalf("decodeRow(appendRow(%+v)) = %v", it, err)
			}
			if diff := cmp.Diff(normalised(it), got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		}
	})
}

// FuzzDecodeRow feeds arbitrary blobs to decodeRow: it must not panic, and
// what it accepts must encode to a row that decodes to the same.
func FuzzDecodeRow(f *testing.F) {
	d := emptyDict.with("support", "email", "full_name")
	for _, it := range []Item{item(1, subjA), {Kind: "rehome", Decision: "x", ActorType: "y", Roles: []string{"ops"}, Fields: []Field{{"city", "odd"}}}} {
		row, _ := appendRow(nil, d, &it)
		f.Add(row)
	}
	f.Add([]byte{})
	f.Add([]byte{0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, row []byte) {
		it, err := decodeRow(row, d)
		if err != nil {
			if !errors.Is(err, errMalformed) && !errors.Is(err, errUnknownWord) {
				t.Fatalf("decodeRow = %v, want errMalformed or errUnknownWord", err)
			}
			return
		}
		again, _ := appendRow(nil, d, &it)
		back, err := decodeRow(again, d)
		if err != nil {
			t.Fatalf("decodeRow(appendRow(%+v)) = %v", it, err)
		}
		if diff := cmp.Diff(it, back); diff != "" {
			t.Errorf("re-encoded (-first +second):\n%s", diff)
		}
	})
}
