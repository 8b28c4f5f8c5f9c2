package pseudonym

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	tinksubtle "github.com/tink-crypto/tink-go/v2/daead/subtle"
)

// A small reference AES-SIV, written from the text of RFC 5297 (S2V,
// section 2.4; SIV-CTR, sections 2.5-2.6) and RFC 4493 (CMAC), for any AES
// key size and any number of associated-data strings. It checks the RFC 5297
// test vectors, which use a 256-bit SIV key (AES-128), a size tink refuses:
// tink takes only 512-bit keys. The reference then vouches for tink with
// 512-bit keys.

// refDouble multiplies a block by x in GF(2^128) (RFC 5297 "dbl").
func refDouble(b [16]byte) [16]byte {
	var out [16]byte
	for i := range 15 {
		out[i] = b[i]<<1 | b[i+1]>>7
	}
	out[15] = b[15] << 1
	if b[0]&0x80 != 0 {
		out[15] ^= 0x87
	}
	return out
}

// refCMAC is AES-CMAC (RFC 4493).
func refCMAC(c cipher.Block, msg []byte) [16]byte {
	var l [16]byte
	c.Encrypt(l[:], l[:])
	k1 := refDouble(l)
	k2 := refDouble(k1)
	n := (len(msg) + 15) / 16
	var last [16]byte
	if n > 0 && len(msg)%16 == 0 {
		subtle.XORBytes(last[:], msg[16*(n-1):], k1[:])
	} else {
		if n == 0 {
			n = 1
		}
		rest := msg[16*(n-1):]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	var x [16]byte
	for i := range n - 1 {
		subtle.XORBytes(x[:], x[:], msg[16*i:16*i+16])
		c.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	c.Encrypt(x[:], x[:])
	return x
}

// refS2V is S2V over strs, the last of which is the plaintext.
func refS2V(c cipher.Block, strs [][]byte) [16]byte {
	var zero [16]byte
	d := refCMAC(c, zero[:])
	for _, s := range strs[:len(strs)-1] {
		m := refCMAC(c, s)
		d = refDouble(d)
		subtle.XORBytes(d[:], d[:], m[:])
	}
	last := strs[len(strs)-1]
	if len(last) >= 16 {
		t := bytes.Clone(last)
		subtle.XORBytes(t[len(t)-16:], t[len(t)-16:], d[:])
		return refCMAC(c, t)
	}
	d = refDouble(d)
	var t [16]byte
	copy(t[:], last)
	t[len(last)] = 0x80
	subtle.XORBytes(t[:], t[:], d[:])
	return refCMAC(c, t[:])
}

// refSIVSeal returns V || C for key K1 || K2 (K1 for S2V, K2 for CTR).
func refSIVSeal(t testing.TB, key, plaintext []byte, ad ...[]byte) []byte {
	t.Helper()
	half := len(key) / 2
	mac, err := aes.NewCipher(key[:half])
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := aes.NewCipher(key[half:])
	if err != nil {
		t.Fatal(err)
	}
	v := refS2V(mac, append(ad, plaintext))
	q := v
	q[8] &= 0x7f
	q[12] &= 0x7f
	out := make([]byte, 16+len(plaintext))
	copy(out, v[:])
	cipher.NewCTR(ctr, q[:]).XORKeyStream(out[16:], plaintext)
	return out
}

func TestReferenceSIVAgainstRFC5297(t *testing.T) {
	// RFC 5297, Appendix A.1: Deterministic Authenticated Encryption Example
	// (one associated-data string, as tink takes).
	key := mustHex(t, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	ad := mustHex(t, "101112131415161718191a1b1c1d1e1f2021222324252627")
	pt := mustHex(t, "112233445566778899aabbccddee")
	want := "85632d07c6e8f37f950acd320a2ecc93" + "40c02b9690c4dc04daef7f6afe5c"
	if got := hex.EncodeToString(refSIVSeal(t, key, pt, ad)); got != want {
		t.Fatalf("A.1: %s, want %s", got, want)
	}
	// RFC 5297, Appendix A.2: Nonce-Based Authenticated Encryption Example
	// (two associated-data strings and a nonce).
	key = mustHex(t, "7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f")
	ad1 := mustHex(t, "00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100")
	ad2 := mustHex(t, "102030405060708090a0")
	nonce := mustHex(t, "09f911029d74e35bd84156c5635688c0")
	pt = mustHex(t, "7468697320697320736f6d6520706c61696e7465787420746f20656e63727970"+"74207573696e67205349562d414553")
	want = "7bdb6e3b432667eb06f4d14bff2fbd0f" +
		"cb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
	if got := hex.EncodeToString(refSIVSeal(t, key, pt, ad1, ad2, nonce)); got != want {
		t.Fatalf("A.2: %s, want %s", got, want)
	}
}

func TestTinkRefusesRFC5297KeySize(t *testing.T) {
	// Why A.1 runs through the reference: its 32-byte key is refused.
	key := mustHex(t, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	if _, err := tinksubtle.NewAESSIV(key); err == nil {
		t.Fatal("tink accepted a 32-byte AES-SIV key; run RFC 5297 A.1 through it directly")
	}
	if _, err := NewSIV(key); err == nil {
		t.Fatal("NewSIV accepted a 32-byte key")
	}
}

// Wycheproof AES-SIV-CMAC vectors with 512-bit keys (C2SP/wycheproof,
// testvectors_v1/aes_siv_cmac_test.json, group keySize 512), run through
// tink by way of SIV: ct is the synthetic IV followed by the ciphertext.
var wycheproofSIV512 = []struct {
	tcID             int
	key, ad, msg, ct string
	valid            bool
}{
	{309, "673cea582bf3982ce3fba5304de8fe46e316d6804749d6db58b7ab7d64bd4e0af641997975234f8b918cca3247d67cfeac9230d15ed28f8071a85e84fa9ef211",
		"f5042d5a5b68b262274974a8", "9e99912c7b", "655ef7f09f4cff47b427e9df7fcc642664715ad14c", true},
	{320, "139383f3f82dc78e0b380027f9e5fcd2ed23716404be5c554452e4dc73d237026594491820c6b8297185cc1fa84f49a5c7d7cd05c5de090ff1c3397bc2740437",
		"d39da73ffc03ad0a9213ffc7", "48604944a80fadf50d55b87727934458c8", "a9cf73951cb39823777f35c96c845169476e2ec2317cb6b8dd8b6172fdceabff9d", true},
	{325, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		"", "8dbfee9580e7e2bc66100a674497f4e1", "000000000000000000000000000000007ef8aa7e4dd49d9cfa09e9cb574fd90d", true},
	{326, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		"000102030405060708090a0b0c0d0e0f", "bfa1733d07afa03cb3f2eeb81bbde037", "000000000000000000000000000000004ce637d6ca9cdf1c2feb0d140865cddb", true},
	{336, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
		"", "3031323334353637", "202e4a8f8b4c66788f3af230fb1c3ada5ead70c7f066d4df", false},
}

func TestSIVWycheproof512(t *testing.T) {
	for _, tc := range wycheproofSIV512 {
		s, err := NewSIV(mustHex(t, tc.key))
		if err != nil {
			t.Fatal(err)
		}
		ad, msg, ct := mustHex(t, tc.ad), mustHex(t, tc.msg), mustHex(t, tc.ct)
		token := SIVPrefix + sivEncoding.EncodeToString(ct)
		got, err := s.Open(string(ad), token)
		if !tc.valid {
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("tcId %d: Open of an invalid vector: err = %v", tc.tcID, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("tcId %d: Open = %x, %v; want %x", tc.tcID, got, err, msg)
		}
		if sealed := s.Seal(string(ad), msg); sealed != token {
			t.Errorf("tcId %d: Seal = %s, want %s", tc.tcID, sealed, token)
		}
		if ref := refSIVSeal(t, mustHex(t, tc.key), msg, ad); !bytes.Equal(ref, ct) {
			t.Errorf("tcId %d: reference gives %x", tc.tcID, ref)
		}
	}
}

func TestSIVMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := make([]byte, SIVKeySize)
	for i := range key {
		key[i] = byte(rng.UintN(256))
	}
	s, err := NewSIV(key)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 5297 A.1's associated data and plaintext under a 512-bit key, then
	// random lengths around the block boundaries.
	inputs := [][2][]byte{{
		mustHex(t, "101112131415161718191a1b1c1d1e1f2021222324252627"),
		mustHex(t, "112233445566778899aabbccddee"),
	}}
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100} {
		ad, pt := make([]byte, rng.IntN(40)), make([]byte, n)
		for i := range pt {
			pt[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, [2][]byte{ad, pt})
	}
	for _, in := range inputs {
		want := SIVPrefix + sivEncoding.EncodeToString(refSIVSeal(t, key, in[1], in[0]))
		if got := s.Seal(string(in[0]), in[1]); got != want {
			t.Errorf("Seal(len %d) = %s, want %s", len(in[1]), got, want)
		}
	}
}

func newTestSIV(t testing.TB) *SIV {
	t.Helper()
	key := make([]byte, SIVKeySize)
	for i := range key {
		key[i] = byte(0x40 + i)
	}
	s, err := NewSIV(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSIVRoundTripAndScope(t *testing.T) {
	s := newTestSIV(t)
	for _, v := range []string{"", "x", "Jane Doe", strings.Repeat("é", 300)} {
		tok := s.Seal("purpose:support", []byte(v))
		if !strings.HasPrefix(tok, SIVPrefix) {
			t.Fatalf("token %q lacks the prefix", tok)
		}
		if tok != s.Seal("purpose:support", []byte(v)) {
			t.Fatal("Seal is not deterministic")
		}
		got, err := s.Open("purpose:support", tok)
		if err != nil || string(got) != v {
			t.Fatalf("Open = %q, %v", got, err)
		}
		if tok == s.Seal("purpose:billing", []byte(v)) {
			t.Fatal("different scopes gave the same token")
		}
		if _, err := s.Open("purpose:billing", tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Open under the wrong scope: err = %v", err)
		}
	}
	other, err := NewSIV(bytes.Repeat([]byte{7}, SIVKeySize))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open("s", s.Seal("s", []byte("v"))); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Open under the wrong key: err = %v", err)
	}
}

func TestSIVTamper(t *testing.T) {
	s := newTestSIV(t)
	tok := s.Seal("s", []byte("national id 1234"))
	body := tok[len(SIVPrefix):]
	bad := map[string]string{
		"empty":          "",
		"no prefix":      body,
		"wrong prefix":   "tk_" + body,
		"prefix only":    SIVPrefix,
		"short":          SIVPrefix + body[:20],
		"truncated":      tok[:len(tok)-1],
		"extended":       tok + "A",
		"padding":        tok + "==",
		"not base64":     SIVPrefix + strings.Repeat("*", len(body)),
		"std alphabet":   strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+",
		"spaces":         SIVPrefix + " " + body,
		"uppercase pfx":  "SV_" + body,
		"swapped halves": SIVPrefix + body[len(body)/2:] + body[:len(body)/2],
	}
	// Every single-character change of the body.
	for i := range body {
		for _, r := range []byte{'A', 'f', '_'} {
			if body[i] != r {
				b := []byte(body)
				b[i] = r
				bad[fmt.Sprintf("char %d to %c", i, r)] = SIVPrefix + string(b)
			}
		}
	}
	for name, tok := range bad {
		if _, err := s.Open("s", tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestSIVErrorsQuoteNothing(t *testing.T) {
	s := newTestSIV(t)
	_, err := s.Open("secret-scope", SIVPrefix+"c2VjcmV0LXZhbHVlLXNlY3JldC12YWx1ZQ")
	if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "c2Vj") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(s.String()+s.GoString(), "40 41") {
		t.Fatal("printing an SIV shows its key")
	}
	for _, key := range [][]byte{nil, make([]byte, 32), make([]byte, 63), make([]byte, 64)} {
		if _, err := NewSIV(key); err == nil {
			t.Errorf("NewSIV(%d bytes) succeeded", len(key))
		}
	}
}
