package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// testRoot is the root key 00 01 02 … 1f.
func testRoot() []byte {
	k := make([]byte, RootKeySize)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func newTestTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := NewTokenizer(testRoot())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// expectedToken computes a token the long way, with crypto/hmac alone.
func expectedToken(root []byte, scope string, value []byte) string {
	kdf := hmac.New(sha256.New, root)
	kdf.Write([]byte("clover/pseudonym/hmac/v1\x00" + scope))
	mac := hmac.New(sha256.New, kdf.Sum(nil))
	mac.Write(value)
	return "tk_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func TestTokenKnownAnswer(t *testing.T) {
	tk := newTestTokenizer(t)
	value := []byte("jane.doe@example.com")
	got := tk.Token("purpose:support", value)
	if want := expectedToken(testRoot(), "purpose:support", value); got != want {
		t.Fatalf("Token = %q, want %q (crypto/hmac)", got, want)
	}
	// Pinned literal, computed independently with Python's hmac module:
	// root 000102…1f, scope "purpose:support", value "jane.doe@example.com";
	// the first 16 bytes of the tag are 6736cf68f8f0404d25b61411ad62db3f.
	const pinned = "tk_ZzbPaPjwQE0lthQRrWLbPw"
	if got != pinned {
		t.Fatalf("Token = %q, want pinned %q: the token format changed", got, pinned)
	}
	if len(got) != TokenLen {
		t.Fatalf("len(token) = %d, want %d", len(got), TokenLen)
	}
	// A 32-byte all-zero value, also pinned from Python.
	if got := tk.Token("purpose:support", make([]byte, 32)); got != "tk_ptZUvXYq9XYeTm-miHHdPw" {
		t.Fatalf("Token(zeros) = %q", got)
	}
}

func TestTokenDeterministicAndScoped(t *testing.T) {
	tk := newTestTokenizer(t)
	a1 := tk.Token("destination:us-analytics", []byte("x"))
	a2 := tk.Token("destination:us-analytics", []byte("x"))
	b := tk.Token("purpose:support", []byte("x"))
	c := tk.Token("destination:us-analytics", []byte("y"))
	if a1 != a2 {
		t.Error("same value and scope gave different tokens")
	}
	if a1 == b {
		t.Error("different scopes gave the same token")
	}
	if a1 == c {
		t.Error("different values gave the same token")
	}
	other, err := NewTokenizer(append(testRoot()[1:], 0xff))
	if err != nil {
		t.Fatal(err)
	}
	if other.Token("destination:us-analytics", []byte("x")) == a1 {
		t.Error("different root keys gave the same token")
	}
	// The scope is not confusable with the value: the scope key is derived.
	if tk.Token("ab", []byte("c")) == tk.Token("a", []byte("bc")) {
		t.Error("scope and value boundaries are confusable")
	}
}

func TestAppendToken(t *testing.T) {
	tk := newTestTokenizer(t)
	dst := []byte("prefix:")
	got := tk.AppendToken(dst, "s", []byte("v"))
	if want := "prefix:" + tk.Token("s", []byte("v")); string(got) != want {
		t.Fatalf("AppendToken = %q, want %q", got, want)
	}
}

func TestAppendTokenAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage or -race")
	}
	tk := newTestTokenizer(t)
	value := make([]byte, 32)
	buf := make([]byte, 0, TokenLen)
	tk.AppendToken(buf, "purpose:support", value) // warm the scope cache and pool
	if n := testing.AllocsPerRun(1000, func() { tk.AppendToken(buf[:0], "purpose:support", value) }); n != 0 {
		t.Errorf("AppendToken allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = tk.Token("purpose:support", value) }); n > 1 {
		t.Errorf("Token allocates %v times per call, want at most 1 (the string)", n)
	}
}

func TestTokenConcurrent(t *testing.T) {
	tk := newTestTokenizer(t)
	root := testRoot()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				scope := fmt.Sprintf("scope-%d", (g+i)%5)
				value := []byte(fmt.Sprintf("value-%d", i))
				if got, want := tk.Token(scope, value), expectedToken(root, scope, value); got != want {
					errs <- fmt.Sprintf("goroutine %d: token mismatch", g)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestTokenManyScopes(t *testing.T) {
	tk := newTestTokenizer(t)
	root := testRoot()
	// Past the cache bound, tokens are still right.
	for i := range maxCachedScopes + 10 {
		scope := fmt.Sprintf("s%d", i)
		if got, want := tk.Token(scope, []byte("v")), expectedToken(root, scope, []byte("v")); got != want {
			t.Fatalf("scope %d: %q, want %q", i, got, want)
		}
	}
	if n := len(*tk.scopes.Load()); n != maxCachedScopes {
		t.Fatalf("cache holds %d scopes, want %d", n, maxCachedScopes)
	}
}

func TestNewTokenizerErrors(t *testing.T) {
	for _, key := range [][]byte{nil, make([]byte, 31), make([]byte, 33), make([]byte, 32)} {
		if _, err := NewTokenizer(key); err == nil {
			t.Errorf("NewTokenizer(%d bytes) succeeded", len(key))
		}
	}
	// The key is copied.
	root := testRoot()
	tk, err := NewTokenizer(root)
	if err != nil {
		t.Fatal(err)
	}
	before := tk.Token("s", []byte("v"))
	root[0] ^= 0xff
	tk2, _ := NewTokenizer(testRoot())
	if tk2.Token("s2", []byte("v")) != tk.Token("s2", []byte("v")) || before != tk.Token("s", []byte("v")) {
		t.Error("the Tokenizer kept a reference to the caller's key")
	}
	if s := fmt.Sprintf("%v %+v %#v", tk, tk, tk); strings.Contains(s, "0 1 2") || !strings.Contains(s, "redacted") {
		t.Errorf("printing a Tokenizer shows %q", s)
	}
}
