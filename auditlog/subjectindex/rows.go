package subjectindex

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// A row's roles and fields are blobs, compact because every audited read
// writes one and most of what the old JSON rows held was field names and
// forms spelled out again and again.
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
// where form is one of the form codes below. Every string is stored as
// valid UTF-8, each invalid byte replaced by U+FFFD, as the JSON rows of
// earlier versions stored them, so List returns what it returned then.
// The count makes a blob never empty (an empty []byte may bind as NULL).
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

// decodeRoles decodes a blob of appendRoles. Roles are never nil, as the
// JSON rows of earlier versions decoded.
func decodeRoles(b []byte, d *dict) ([]string, error) {
	r := blobReader{b: b}
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
	return roles, r.end()
}

// decodeFields decodes a blob of appendFields. Fields are never nil.
func decodeFields(b []byte, d *dict) ([]Field, error) {
	r := blobReader{b: b}
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
	return fields, r.end()
}

// blobReader reads a blob of appendRoles or appendFields.
type blobReader struct{ b []byte }

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

func (r *blobReader) string() (string, error) {
	n, err := r.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.b)) {
		return "", fmt.Errorf("%w: a string of %d bytes in %d", errMalformed, n, len(r.b))
	}
	s := r.b[:n]
	if !utf8.Valid(s) {
		return "", fmt.Errorf("%w: a string that is not UTF-8", errMalformed)
	}
	r.b = r.b[n:]
	return string(s), nil
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
