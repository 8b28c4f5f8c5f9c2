package policy

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// MaxFileBytes caps the size of one policy or test file.
const MaxFileBytes = 1 << 20

// MaxIDBytes caps the length of an @id annotation.
const MaxIDBytes = 128

//go:embed default/*.cedar default/*.test.yaml
var defaultFiles embed.FS

// DefaultFS returns the built-in policies and their tests (the *.cedar and
// *.test.yaml files of policy/default), at the root of the returned FS.
func DefaultFS() fs.FS {
	sub, err := fs.Sub(defaultFiles, "default")
	if err != nil { // cannot happen: "default" is a valid path
		return defaultFiles
	}
	return sub
}

// Default returns the built-in default policy set.
func Default() (*Set, error) {
	s, err := Load(DefaultFS())
	if err != nil {
		return nil, fmt.Errorf("built-in policies: %w", err)
	}
	return s, nil
}

// File is one policy file as loaded: its name (relative to the directory)
// and its full text.
type File struct {
	Name string
	Text string
}

// Set is a loaded policy set: immutable, safe for concurrent use, with its
// own decision memo. A reload builds a new Set.
type Set struct {
	files   []File
	digest  string
	ids     []string
	entries []*entry
	byID    map[cedar.PolicyID]*entry
	// byAction holds, for each requestable action, the policies whose action
	// scope can match it, in load order.
	byAction map[string][]*entry
	// keySubject is set when a policy names a principal entity, so that the
	// caller's subject is part of the memo key.
	keySubject bool
	static     types.EntityMap
	memo       *memo
	fields     *fieldEntities
}

// entry is one policy with what Decide needs to know about its scope.
type entry struct {
	id        cedar.PolicyID
	policy    *cedar.Policy
	ast       *xast.Policy
	forbid    bool
	file      int // index into Set.files
	pos       types.Position
	principal scopeMatch
	resource  scopeMatch
}

// Error is a problem tied to a place in a policy or test file. Line and
// Column are 0 when unknown.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// Errors is a list of problems, in file order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Load reads every *.cedar file at the root of fsys, in name order, and
// parses it. A policy's id is its @id("...") annotation, which must be unique
// across the files, or else "<file>:<index>" with the 0-based index of the
// policy in its file. Load does not check the policies against the entity
// model: call Check for that.
func Load(fsys fs.FS) (*Set, error) {
	names, err := fs.Glob(fsys, "*.cedar")
	if err != nil {
		return nil, fmt.Errorf("list policy files: %w", err)
	}
	slices.Sort(names)
	var files []File
	for _, name := range names {
		text, err := readFile(fsys, name)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Text: text})
	}
	if len(files) == 0 {
		return nil, errors.New("no *.cedar policy files")
	}
	return build(files)
}

// readFile reads a regular file of at most MaxFileBytes.
func readFile(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "", &Error{File: name, Msg: "is a directory"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return "", &Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}
	}
	return string(data), nil
}

// build parses the files, which are sorted by name.
func build(files []File) (*Set, error) {
	s := &Set{
		files:    files,
		digest:   digest(files),
		byID:     map[cedar.PolicyID]*entry{},
		byAction: map[string][]*entry{},
		static:   staticEntities(),
		memo:     newMemo(memoEntries),
		fields:   &fieldEntities{},
	}
	var errs Errors
	for fi, f := range files {
		list, err := cedar.NewPolicyListFromBytes(f.Name, []byte(f.Text))
		if err != nil {
			errs = append(errs, parseError(f, err))
			continue
		}
		for i, p := range list {
			e := &entry{
				policy: p,
				ast:    (*xast.Policy)(p.AST()),
				forbid: p.Effect() == cedar.Forbid,
				file:   fi,
				pos:    p.Position(),
			}
			e.pos.Filename = f.Name
			e.id = cedar.PolicyID(fmt.Sprintf("%s:%d", f.Name, i))
			if v, ok := p.Annotations()["id"]; ok {
				if msg := badID(string(v)); msg != "" {
					errs = append(errs, errorAt(e.pos, msg))
					continue
				}
				e.id = cedar.PolicyID(v)
			}
			if prev, dup := s.byID[e.id]; dup {
				errs = append(errs, errorAt(e.pos, fmt.Sprintf("policy id %q is already used by the policy at %s", e.id, posString(prev.pos))))
				continue
			}
			e.principal = principalScope(e.ast.Principal)
			e.resource = resourceScope(e.ast.Resource)
			if namesPrincipal(e.ast) {
				s.keySubject = true
			}
			s.byID[e.id] = e
			s.entries = append(s.entries, e)
			s.ids = append(s.ids, string(e.id))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, a := range modelActions() {
		if !requestable(a) {
			continue
		}
		for _, e := range s.entries {
			if actionMatches(e.ast.Action, a) {
				s.byAction[a] = append(s.byAction[a], e)
			}
		}
	}
	return s, nil
}

// badID says what is wrong with an @id value, or "".
func badID(id string) string {
	switch {
	case id == "":
		return `@id must not be empty`
	case len(id) > MaxIDBytes:
		return fmt.Sprintf("@id is longer than %d bytes", MaxIDBytes)
	case strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }):
		return fmt.Sprintf("@id %q must be printable and without spaces", id)
	}
	return ""
}

func errorAt(p types.Position, msg string) *Error {
	return &Error{File: p.Filename, Line: p.Line, Column: p.Column, Msg: msg}
}

func posString(p types.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// parseError turns cedar-go's parser error ("parser error: parse error at
// <input>:3:68 ";": invalid primary") into file:line:column. An error without
// a position is placed at the end of the file.
func parseError(f File, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	re := regexp.MustCompile(`<input>:(\d+):(\d+):? ?`)
	if m := re.FindStringSubmatchIndex(msg); m != nil {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		col, _ := strconv.Atoi(msg[m[4]:m[5]])
		rest := msg[:m[0]] + msg[m[1]:]
		rest = strings.TrimPrefix(rest, "parse error at ")
		if line > 0 {
			if col < 1 {
				col = 1
			}
			return &Error{File: f.Name, Line: line, Column: col, Msg: "syntax error: " + rest}
		}
		msg = rest
	}
	line, col := endOf(f.Text)
	return &Error{File: f.Name, Line: line, Column: col, Msg: "syntax error: " + msg}
}

// endOf is the line and column just past the end of text.
func endOf(text string) (int, int) {
	return lineCol(text, len(text))
}

// lineCol converts a byte offset into a 1-based line and column (counted in
// characters, like cedar-go).
func lineCol(text string, off int) (int, int) {
	off = min(off, len(text))
	line := 1 + strings.Count(text[:off], "\n")
	start := strings.LastIndexByte(text[:off], '\n') + 1
	return line, 1 + len([]rune(text[start:off]))
}

// digest is the hex SHA-256 of the files in name order: for each file, the
// length of its name as an 8-byte big-endian integer, the name, the length
// of its text as an 8-byte big-endian integer, and the text.
func digest(files []File) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Name)))
		h.Write(n[:])
		io.WriteString(h, f.Name)
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Text)))
		h.Write(n[:])
		io.WriteString(h, f.Text)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Digest is the hex SHA-256 that identifies the set's files (see docs/policy.md
// for the canonical order).
func (s *Set) Digest() string { return s.digest }

// Files returns the policy files, in name order, with their full text.
func (s *Set) Files() []File { return slices.Clone(s.files) }

// IDs returns the policy ids in load order (file name order, then order
// within the file).
func (s *Set) IDs() []string { return slices.Clone(s.ids) }

// Len is the number of policies.
func (s *Set) Len() int { return len(s.entries) }

// Policy returns the Cedar text of the policy with the given id.
func (s *Set) Policy(id string) (string, bool) {
	e, ok := s.byID[cedar.PolicyID(id)]
	if !ok {
		return "", false
	}
	return string(e.policy.MarshalCedar()), true
}
