package subjectindex

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// A row of accesses is the entry's log index (the table's rowid), the
// subject's pseudonym (a column of its own, for the by-subject index and
// List's comparison) and one blob, row, that holds everything else. Every
// audited read writes a row, and SQLite's work (through database/sql)
// grows with the values bound and the columns stored more than with the
// bytes: one blob in place of the nine columns of format 1 took a quarter
// off Add's cost per item (BenchmarkAdd: 6.9–7.3 → 5.2–5.5 µs).
//
// row: uvarint(head) [kind] [decision] [actor type]
//
//	varint(time) varint(status) string(country) string(purpose) roles fields
//
// head is kind | decision<<2 | actorType<<4, each the code of the value in
// kinds, decisions or actorTypes below; the code codeInline means that the
// value follows as a string (the inline ones in that order), so that no
// value is lost. time is in unix microseconds; it and status are zigzag
// varints (binary.AppendVarint), so that any value round-trips. A string
// is a uvarint length and its bytes: kind, decision, actor type, country
// and purpose are kept byte for byte, as the TEXT columns of format 1 kept
// them, where roles and fields (below) are made valid UTF-8. A row that is
// truncated, has bytes after its fields, or holds a code that means
// nothing is malformed.
//
// Roles and fields are compact because most of what the JSON rows of
// format 0 held was field names and forms spelled out again and again.
//
// Words (field names and roles) are interned in the table words, whose ids
// are 0, 1, 2, … in the order they were added, never changed or removed.
// A word is interned if it is at most maxWordLen bytes and the table has
// fewer than maxWords words; any other word is written inline, so that no
// name or role is ever lost or altered, and the table (and its copy in
// memory) stays small whatever callers put in their requests. A reference
// to a word is its id + 1; the reference 0 means "inline": a uvarint length
// and the word's bytes follow.
//
// roles:  uvarint(count), then per role uvarint(ref) [inline word]
// fields: uvarint(count), then per field uvarint(ref<<3 | form)
//
//	[inline name] [inline form, when form is formInline]
//
// where form is one of the form codes below. Every role, name and form is
// stored as valid UTF-8, each invalid byte replaced by U+FFFD, as the JSON
// rows of format 0 stored them, so List returns what it returned then.
// The count makes a blob never empty (an empty []byte may bind as NULL),
// as the head does a row.
const (
	maxWords   = 4096
	maxWordLen = 64
)

// The form codes; formInline means that the form follows as a string.
const (
	formRaw uint64 = iota
	formPseudonym
	formGeneralised
	formMasked
	formWithheld
	formInline uint64 = 7
	formBits          = 3
)

// forms are the forms with a code, by code.
var forms = [...]string{formRaw: "raw", formPseudonym: "pseudonym", formGeneralised: "generalised", formMasked: "masked", formWithheld: "withheld"}

// The codes of kind, decision and actor type: two bits each in a row's
// head, codeInline meaning that the value follows as a string. They are
// the file's format: never renumber them.
const (
	codeBits   = 2
	codeInline = 1<<codeBits - 1
)

var (
	kinds      = [...]string{"decision", "write", "erase"}
	decisions  = [...]string{"allow", "deny"}
	actorTypes = [...]string{"Employee", "Service"}
)

// codeOf returns the code of value in values, or codeInline.
func codeOf(values []string, value string) uint64 {
	for i, v := range values {
		if v == value {
			return uint64(i)
		}
	}
	return codeInline
}

// formCode returns the code of form, or formInline.
func formCode(form string) uint64 {
	for i, f := range forms {
		if f == form {
			return uint64(i)
		}
	}
	return formInline
}

// errMalformed is returned for a blob that is not a valid encoding.
var errMalformed = errors.New("malformed")

// errUnknownWord is returned for a reference to a word not in the dictionary
// decoded with: another connection may have added it since.
var errUnknownWord = errors.New("reference to a word not in the dictionary")

// dict is a snapshot of the words table. It is never changed once built:
// with returns a new one, so readers need no lock.
type dict struct {
	ids   map[string]uint64 // word → id
	words []string          // id → word
}

var emptyDict = &dict{ids: map[string]uint64{}}

// ref is the reference to word: its id + 1, or 0 if it is not interned.
func (d *dict) ref(word string) uint64 {
	if id, ok := d.ids[word]; ok {
		return id + 1
	}
	return 0
}

// with returns d with more words, which take the ids after d's.
func (d *dict) with(more ...string) *dict {
	if len(more) == 0 {
		return d
	}
	n := &dict{ids: make(map[string]uint64, len(d.words)+len(more)), words: make([]string, 0, len(d.words)+len(more))}
	n.words = append(append(n.words, d.words...), more...)
	for id, w := range n.words {
		n.ids[w] = uint64(id)
	}
	return n
}

// internable reports whether word may be interned (room aside).
func internable(word string) bool {
	return len(word) <= maxWordLen
}

// querier is what loadWords reads with: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadWords returns d with the words the table holds beyond d's.
func loadWords(ctx context.Context, q querier, d *dict) (*dict, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, word FROM words WHERE id >= ? ORDER BY id`, len(d.words))
	if err != nil {
		return nil, fmt.Errorf("subjectindex: read words: %w", err)
	}
	defer rows.Close()
	var more []string
	for rows.Next() {
		var (
			id   int64
			word string
		)
		if err := rows.Scan(&id, &word); err != nil {
			return nil, fmt.Errorf("subjectindex: read words: %w", err)
		}
		if want := len(d.words) + len(more); id != int64(want) {
			return nil, fmt.Errorf("subjectindex: read words: id %d where %d was expected", id, want)
		}
		more = append(more, word)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subjectindex: read words: %w", err)
	}
	return d.with(more...), nil
}

// intern returns base with every internable word of items that is not in
// it yet, adding to the words table (in tx, which must hold the write lock)
// those it does not hold either, while there is room. The result is for
// the transaction's use until it commits: only then may it be installed.
func intern(ctx context.Context, tx *sql.Tx, base *dict, items []Item) (*dict, error) {
	var missing []string
	var seen map[string]bool
	note := func(w string) {
		w = validUTF8(w)
		if !internable(w) || seen[w] {
			return
		}
		if _, ok := base.ids[w]; ok {
			return
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[w] = true
		missing = append(missing, w)
	}
	for _, it := range items {
		for _, r := range it.Roles {
			note(r)
		}
		for _, f := range it.Fields {
			note(f.Name)
		}
	}
	if len(missing) == 0 {
		return base, nil
	}
	// Another connection or process may have added words since base.
	d, err := loadWords(ctx, tx, base)
	if err != nil {
		return nil, err
	}
	var added []string
	for _, w := range missing {
		if _, ok := d.ids[w]; ok {
			continue
		}
		id := len(d.words) + len(added)
		if id >= maxWords {
			break
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO words (id, word) VALUES (?, ?)`, id, w); err != nil {
			return nil, fmt.Errorf("subjectindex: add word %d: %w", id, err)
		}
		added = append(added, w)
	}
	return d.with(added...), nil
}

// appendRow appends the row blob of it (everything but its index and
// subject), and reports whether it wrote inline a word that could be
// interned.
func appendRow(b []byte, d *dict, it *Item) ([]byte, bool) {
	kind, decision, actor := codeOf(kinds[:], it.Kind), codeOf(decisions[:], it.Decision), codeOf(actorTypes[:], it.ActorType)
	b = binary.AppendUvarint(b, kind|decision<<codeBits|actor<<(2*codeBits))
	b = appendInline(b, kind, it.Kind)
	b = appendInline(b, decision, it.Decision)
	b = appendInline(b, actor, it.ActorType)
	b = binary.AppendVarint(b, it.Time.UnixMicro())
	b = binary.AppendVarint(b, int64(it.Status))
	b = appendString(b, it.Country)
	b = appendString(b, it.Purpose)
	b, missedRole := appendRoles(b, d, it.Roles)
	b, missedName := appendFields(b, d, it.Fields)
	return b, missedRole || missedName
}

// appendInline appends value if its code is codeInline.
func appendInline(b []byte, code uint64, value string) []byte {
	if code == codeInline {
		return appendString(b, value)
	}
	return b
}

// appendRoles appends the blob of roles, and reports whether it wrote
// inline a role that could be interned.
func appendRoles(b []byte, d *dict, roles []string) ([]byte, bool) {
	missed := false
	b = binary.AppendUvarint(b, uint64(len(roles)))
	for _, r := range roles {
		r, ref := lookup(d, r)
		b = binary.AppendUvarint(b, ref)
		if ref == 0 {
			b = appendString(b, r)
			missed = missed || internable(r)
		}
	}
	return b, missed
}

// appendFields appends the blob of fields, and reports whether it wrote
// inline a name that could be interned.
func appendFields(b []byte, d *dict, fields []Field) ([]byte, bool) {
	missed := false
	b = binary.AppendUvarint(b, uint64(len(fields)))
	for _, f := range fields {
		name, ref := lookup(d, f.Name)
		form, code := f.Form, formCode(f.Form)
		b = binary.AppendUvarint(b, ref<<formBits|code)
		if ref == 0 {
			b = appendString(b, name)
			missed = missed || internable(name)
		}
		if code == formInline {
			b = appendString(b, validUTF8(form))
		}
	}
	return b, missed
}

// lookup returns word as it is stored (valid UTF-8) and its reference in d.
func lookup(d *dict, word string) (string, uint64) {
	if ref := d.ref(word); ref != 0 {
		return word, ref // every word of d is valid UTF-8
	}
	if v := validUTF8(word); v != word {
		return v, d.ref(v)
	}
	return word, 0
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRow decodes a row blob of appendRow: the item but its index and
// subject. Its roles and fields are never nil, as the JSON rows of format
// 0 decoded.
func decodeRow(b []byte, d *dict) (Item, error) {
	r := blobReader{b: b}
	var it Item
	if err := r.scalars(&it); err != nil {
		return Item{}, err
	}
	var err error
	if it.Roles, err = r.roles(d); err != nil {
		return Item{}, fmt.Errorf("roles: %w", err)
	}
	if it.Fields, err = r.fields(d); err != nil {
		return Item{}, fmt.Errorf("fields: %w", err)
	}
	return it, r.end()
}

// decodeRoles decodes a blob of appendRoles (a column of format 1).
func decodeRoles(b []byte, d *dict) ([]string, error) {
	r := blobReader{b: b}
	roles, err := r.roles(d)
	if err != nil {
		return nil, err
	}
	return roles, r.end()
}

// decodeFields decodes a blob of appendFields (a column of format 1).
func decodeFields(b []byte, d *dict) ([]Field, error) {
	r := blobReader{b: b}
	fields, err := r.fields(d)
	if err != nil {
		return nil, err
	}
	return fields, r.end()
}

// blobReader reads a blob of appendRow, appendRoles or appendFields.
type blobReader struct{ b []byte }

// scalars reads the part of a row before its roles into it.
func (r *blobReader) scalars(it *Item) error {
	head, err := r.uvarint()
	if err != nil {
		return err
	}
	if head>>(3*codeBits) != 0 {
		return fmt.Errorf("%w: head %#x", errMalformed, head)
	}
	const mask = 1<<codeBits - 1
	if it.Kind, err = r.coded(kinds[:], head&mask); err != nil {
		return err
	}
	if it.Decision, err = r.coded(decisions[:], head>>codeBits&mask); err != nil {
		return err
	}
	if it.ActorType, err = r.coded(actorTypes[:], head>>(2*codeBits)&mask); err != nil {
		return err
	}
	micros, err := r.varint()
	if err != nil {
		return err
	}
	status, err := r.varint()
	if err != nil {
		return err
	}
	if int64(int(status)) != status {
		return fmt.Errorf("%w: status %d out of range", errMalformed, status)
	}
	it.Time, it.Status = time.UnixMicro(micros).UTC(), int(status)
	if it.Country, err = r.rawString(); err != nil {
		return err
	}
	it.Purpose, err = r.rawString()
	return err
}

// coded returns the value of code in values, or the inline value that
// follows if code is codeInline.
func (r *blobReader) coded(values []string, code uint64) (string, error) {
	switch {
	case code < uint64(len(values)):
		return values[code], nil
	case code == codeInline:
		return r.rawString()
	}
	return "", fmt.Errorf("%w: code %d", errMalformed, code)
}

// roles reads a blob of appendRoles.
func (r *blobReader) roles(d *dict) ([]string, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	roles := make([]string, n)
	for i := range roles {
		ref, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		if roles[i], err = r.word(d, ref); err != nil {
			return nil, err
		}
	}
	return roles, nil
}

// fields reads a blob of appendFields.
func (r *blobReader) fields(d *dict) ([]Field, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	fields := make([]Field, n)
	for i := range fields {
		head, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		if fields[i].Name, err = r.word(d, head>>formBits); err != nil {
			return nil, err
		}
		switch code := head & (1<<formBits - 1); {
		case code < uint64(len(forms)):
			fields[i].Form = forms[code]
		case code == formInline:
			if fields[i].Form, err = r.string(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: form code %d", errMalformed, code)
		}
	}
	return fields, nil
}

func (r *blobReader) varint() (int64, error) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad varint", errMalformed)
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *blobReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: bad uvarint", errMalformed)
	}
	r.b = r.b[n:]
	return v, nil
}

// count reads a count of entries, each at least a byte.
func (r *blobReader) count() (int, error) {
	n, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)) {
		return 0, fmt.Errorf("%w: %d entries in %d bytes", errMalformed, n, len(r.b))
	}
	return int(n), nil
}

// word returns the word of ref: the dictionary's, or the inline one.
func (r *blobReader) word(d *dict, ref uint64) (string, error) {
	if ref == 0 {
		return r.string()
	}
	if ref-1 >= uint64(len(d.words)) {
		return "", fmt.Errorf("%w: id %d", errUnknownWord, ref-1)
	}
	return d.words[ref-1], nil
}

// string reads a string that must be valid UTF-8 (a word or a form).
func (r *blobReader) string() (string, error) {
	s, err := r.bytes()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", fmt.Errorf("%w: a string that is not UTF-8", errMalformed)
	}
	return string(s), nil
}

// rawString reads a string kept byte for byte.
func (r *blobReader) rawString() (string, error) {
	s, err := r.bytes()
	return string(s), err
}

func (r *blobReader) bytes() ([]byte, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: a string of %d bytes in %d", errMalformed, n, len(r.b))
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s, nil
}

func (r *blobReader) end() error {
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the end", errMalformed, len(r.b))
	}
	return nil
}

// validUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json encodes it.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
