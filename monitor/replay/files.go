package replay

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

// policyFiles is the files of a policy entry as an fs.FS, for policy.Load:
// file name to text, all at the root.
type policyFiles map[string]string

var (
	_ fs.FS     = policyFiles{}
	_ fs.GlobFS = policyFiles{}
)

// newPolicyFiles checks the files of a policy entry: each a *.cedar file at
// the root (what policy.Load reads and the gateway records), each once.
func newPolicyFiles(files []auditlog.PolicyFile) (policyFiles, error) {
	m := make(policyFiles, len(files))
	for _, f := range files {
		if !fs.ValidPath(f.Name) || strings.Contains(f.Name, "/") || path.Ext(f.Name) != ".cedar" {
			return nil, fmt.Errorf("policy file name %q is not a *.cedar file at the root", f.Name)
		}
		if _, dup := m[f.Name]; dup {
			return nil, fmt.Errorf("policy file %q appears twice", f.Name)
		}
		m[f.Name] = f.Text
	}
	return m, nil
}

func (m policyFiles) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	text, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &policyFile{name: name, Reader: strings.NewReader(text)}, nil
}

// Glob matches the names against pattern; every name is at the root.
func (m policyFiles) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	return out, nil
}

// policyFile is an open policy file; it is its own fs.FileInfo (Size is
// the strings.Reader's: the length of the whole text).
type policyFile struct {
	*strings.Reader
	name string
}

var (
	_ fs.File     = (*policyFile)(nil)
	_ fs.FileInfo = (*policyFile)(nil)
	_ io.Reader   = (*policyFile)(nil)
)

func (f *policyFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *policyFile) Close() error               { return nil }
func (f *policyFile) Name() string               { return f.name }
func (f *policyFile) Mode() fs.FileMode          { return 0o444 }
func (f *policyFile) ModTime() time.Time         { return time.Time{} }
func (f *policyFile) IsDir() bool                { return false }
func (f *policyFile) Sys() any                   { return nil }
