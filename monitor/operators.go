package monitor

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// operators are the people who may read and handle incidents, each with a
// bearer token. The file holds one "name token" per line; '#' starts a
// comment. Tokens are compared in constant time, as SHA-256 digests so that
// every comparison has the same length.
type operators struct {
	names  []string
	hashes [][32]byte
}

// minTokenLen is the shortest operator token accepted.
const minTokenLen = 16

// loadOrCreateOperators reads the operators file, or creates it (0600)
// with one operator "admin" and a random token. created says it did.
func loadOrCreateOperators(path string) (_ *operators, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		tok := make([]byte, 24)
		if _, err := rand.Read(tok); err != nil {
			return nil, false, err
		}
		line := "# clover monitor operators: one \"name token\" per line\nadmin " + base64.RawURLEncoding.EncodeToString(tok) + "\n"
		if err := atomicfile.Create(path, []byte(line), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, false, fmt.Errorf("operators file: %w", err)
		}
		created = true
		if b, err = os.ReadFile(path); err != nil {
			return nil, false, err
		}
	} else if err != nil {
		return nil, false, fmt.Errorf("operators file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("operators file %s: mode %v lets others read the tokens; chmod 600 it", path, fi.Mode().Perm())
	}
	ops, err := parseOperators(b, path)
	return ops, created, err
}

func parseOperators(b []byte, path string) (*operators, error) {
	ops := &operators{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"name token\"", path, n)
		}
		if !nameRE.MatchString(f[0]) || seen[f[0]] {
			return nil, fmt.Errorf("%s:%d: operator name %q is invalid or used twice", path, n, f[0])
		}
		if len(f[1]) < minTokenLen {
			return nil, fmt.Errorf("%s:%d: the token of %q is shorter than %d characters", path, n, f[0], minTokenLen)
		}
		seen[f[0]] = true
		ops.names = append(ops.names, f[0])
		ops.hashes = append(ops.hashes, sha256.Sum256([]byte(f[1])))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ops.names) == 0 {
		return nil, fmt.Errorf("%s: no operators", path)
	}
	return ops, nil
}

// who returns the operator a request's bearer token belongs to. Every
// token is compared, so the time taken does not say which one matched.
func (o *operators) who(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(tok))
	found := -1
	for i := range o.hashes {
		if subtle.ConstantTimeCompare(h[:], o.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return o.names[found], true
}
