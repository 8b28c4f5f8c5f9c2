package pseudonym

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
)

// FF1 limits. The domain rule is that of NIST SP 800-38G Rev. 1:
// radix^minlen >= 1,000,000.
const (
	FF1MinRadix    = 2
	FF1MaxRadix    = 36
	FF1MaxLen      = 4096 // numerals in one input
	FF1MaxTweakLen = 1024 // bytes
	ff1MinDomain   = 1_000_000
	ff1Rounds      = 10
)

// ff1Alphabet spells numerals: the first radix characters are those of a
// given radix.
const ff1Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// ErrDomain is wrapped by FF1 errors for an input outside the cipher's
// domain: too short, too long, or holding a character that is not a numeral
// of the radix.
var ErrDomain = errors.New("pseudonym: value outside the FF1 domain")

// FF1 is the FF1 format-preserving cipher of NIST SP 800-38G over AES, for
// strings of numerals of one radix (2 to 36, spelt with the first radix
// characters of "0123456789abcdefghijklmnopqrstuvwxyz"). It is safe for
// concurrent use.
type FF1 struct {
	block   cipher.Block
	radix   int
	minLen  int    // shortest input that meets the domain rule
	fastLen int    // largest v with radix^v <= 2^63: the uint64 path
	tweak   []byte // default tweak
}

// NewFF1 returns an FF1 cipher for an AES-128, AES-192 or AES-256 key, a
// radix from 2 to 36 and a default tweak used by Encrypt and Decrypt. The key
// and tweak are copied.
func NewFF1(key []byte, radix int, tweak []byte) (*FF1, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("pseudonym: FF1 key must be 16, 24 or 32 bytes, got %d", len(key))
	}
	if allZero(key) {
		return nil, errors.New("pseudonym: FF1 key is all zeros")
	}
	if radix < FF1MinRadix || radix > FF1MaxRadix {
		return nil, fmt.Errorf("pseudonym: FF1 radix must be %d to %d, got %d", FF1MinRadix, FF1MaxRadix, radix)
	}
	if len(tweak) > FF1MaxTweakLen {
		return nil, fmt.Errorf("pseudonym: FF1 tweak longer than %d bytes", FF1MaxTweakLen)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: FF1 key: %w", err)
	}
	f := &FF1{block: block, radix: radix, tweak: bytes.Clone(tweak)}
	f.minLen, f.fastLen = ff1Lengths(radix)
	return f, nil
}

// ff1Lengths returns the shortest length meeting the domain rule and the
// longest half that the uint64 arithmetic can hold.
func ff1Lengths(radix int) (minLen, fastLen int) {
	r := uint64(radix)
	p := uint64(1)
	for p < ff1MinDomain {
		p *= r
		minLen++
	}
	p = 1
	for p <= (1<<63)/r {
		p *= r
		fastLen++
	}
	return max(minLen, 2), fastLen
}

// Radix returns the radix of f.
func (f *FF1) Radix() int { return f.radix }

// MinLen returns the fewest numerals f accepts: the least n with
// radix^n >= 1,000,000.
func (f *FF1) MinLen() int { return f.minLen }

// WithTweak returns a copy of f whose default tweak is tweak. The copy shares
// f's key schedule, so it is cheap.
func (f *FF1) WithTweak(tweak []byte) (*FF1, error) {
	if len(tweak) > FF1MaxTweakLen {
		return nil, fmt.Errorf("pseudonym: FF1 tweak longer than %d bytes", FF1MaxTweakLen)
	}
	g := *f
	g.tweak = bytes.Clone(tweak)
	return &g, nil
}

// Encrypt encrypts a string of numerals with the default tweak.
func (f *FF1) Encrypt(numerals string) (string, error) {
	return f.crypt(f.tweak, numerals, false)
}

// Decrypt decrypts a string of numerals with the default tweak.
func (f *FF1) Decrypt(numerals string) (string, error) {
	return f.crypt(f.tweak, numerals, true)
}

// EncryptWithTweak encrypts a string of numerals with the given tweak.
func (f *FF1) EncryptWithTweak(tweak []byte, numerals string) (string, error) {
	return f.crypt(tweak, numerals, false)
}

// DecryptWithTweak decrypts a string of numerals with the given tweak.
func (f *FF1) DecryptWithTweak(tweak []byte, numerals string) (string, error) {
	return f.crypt(tweak, numerals, true)
}

// String hides the key when an FF1 is printed.
func (f *FF1) String() string { return fmt.Sprintf("pseudonym.FF1{radix: %d, key: redacted}", f.radix) }

// GoString hides the key when an FF1 is printed with %#v.
func (f *FF1) GoString() string { return f.String() }

// crypt checks the input and runs the ten Feistel rounds of SP 800-38G
// Algorithm 7 (encryption) or 8 (decryption).
func (f *FF1) crypt(tweak []byte, x string, decrypt bool) (string, error) {
	if err := f.check(tweak, x); err != nil {
		return "", err
	}
	u := len(x) / 2
	c := f.newCall(tweak, u, len(x)-u)
	if c.v <= f.fastLen {
		return c.cryptUint64(x, decrypt), nil
	}
	return c.cryptBig(x, decrypt)
}

func (f *FF1) check(tweak []byte, x string) error {
	if len(tweak) > FF1MaxTweakLen {
		return fmt.Errorf("pseudonym: FF1 tweak longer than %d bytes", FF1MaxTweakLen)
	}
	if len(x) < f.minLen {
		return fmt.Errorf("%w: fewer than %d numerals of radix %d", ErrDomain, f.minLen, f.radix)
	}
	if len(x) > FF1MaxLen {
		return fmt.Errorf("%w: more than %d numerals", ErrDomain, FF1MaxLen)
	}
	for i := 0; i < len(x); i++ {
		if !f.isNumeral(x[i]) {
			return fmt.Errorf("%w: character %d is not a numeral of radix %d", ErrDomain, i+1, f.radix)
		}
	}
	return nil
}

// isNumeral reports whether ch spells a numeral of f's radix.
func (f *FF1) isNumeral(ch byte) bool { return numeralValue(ch) < f.radix }

// numeralValue returns the value ch spells in ff1Alphabet, or 255.
func numeralValue(ch byte) int {
	switch {
	case '0' <= ch && ch <= '9':
		return int(ch - '0')
	case 'a' <= ch && ch <= 'z':
		return int(ch-'a') + 10
	}
	return 255
}

// ff1Call holds what one encryption or decryption computes once and
// reuses in every round.
type ff1Call struct {
	block cipher.Block
	radix int
	u, v  int
	b, d  int    // SP 800-38G steps 3 and 4
	q     []byte // Q = T || 0^pad || [i]^1 || [NUM(B)]^b, last b+1 bytes per round
	fixed [16]byte
	// fixedLen is how many leading bytes of q are already absorbed into
	// fixed (with P before them): whole blocks that no round changes.
	fixedLen int
	r, blk   [16]byte // scratch, kept off the stack of interface calls
	s        []byte   // S, rounded up to whole blocks
}

func (f *FF1) newCall(tweak []byte, u, v int) *ff1Call {
	n, t := u+v, len(tweak)
	b := numBytes(f.radix, v, f.fastLen)
	d := 4*((b+3)/4) + 4
	pad := ((-t-b-1)%16 + 16) % 16
	c := &ff1Call{block: f.block, radix: f.radix, u: u, v: v, b: b, d: d}
	c.q = make([]byte, t+pad+1+b)
	copy(c.q, tweak)
	c.s = make([]byte, (d+15)/16*16)

	// P = [1]^1 || [2]^1 || [1]^1 || [radix]^3 || [10]^1 || [u mod 256]^1 || [n]^4 || [t]^4
	p := [16]byte{1, 2, 1, byte(f.radix >> 16), byte(f.radix >> 8), byte(f.radix), ff1Rounds, byte(u)}
	binary.BigEndian.PutUint32(p[8:], uint32(n))
	binary.BigEndian.PutUint32(p[12:], uint32(t))
	c.block.Encrypt(c.fixed[:], p[:])
	c.fixedLen = (t + pad) / 16 * 16
	c.cbcmac(&c.fixed, c.q[:c.fixedLen])
	return c
}

// numBytes returns b = ceil(ceil(v*log2(radix))/8), computed exactly as the
// byte length of radix^v - 1: the two agree for every radix and v >= 1.
func numBytes(radix, v, fastLen int) int {
	if v <= fastLen {
		p := uint64(1)
		for range v {
			p *= uint64(radix)
		}
		return (bits.Len64(p-1) + 7) / 8
	}
	p := new(big.Int).Exp(big.NewInt(int64(radix)), big.NewInt(int64(v)), nil)
	return (p.Sub(p, big.NewInt(1)).BitLen() + 7) / 8
}

// cbcmac continues a CBC-MAC from state y over data, whose length is a
// multiple of the block size.
func (c *ff1Call) cbcmac(y *[16]byte, data []byte) {
	for off := 0; off < len(data); off += 16 {
		subtle.XORBytes(y[:], y[:], data[off:off+16])
		c.block.Encrypt(y[:], y[:])
	}
}

// prf returns S of round i (steps 6.i-6.iii) given [NUM(B)]^b.
func (c *ff1Call) prf(i int, num []byte) []byte {
	q := c.q
	q[len(q)-c.b-1] = byte(i)
	copy(q[len(q)-c.b:], num)
	c.r = c.fixed
	c.cbcmac(&c.r, q[c.fixedLen:])
	copy(c.s, c.r[:])
	for j := 1; j*16 < c.d; j++ {
		c.blk = c.r
		var ctr [8]byte
		binary.BigEndian.PutUint64(ctr[:], uint64(j))
		subtle.XORBytes(c.blk[8:], c.blk[8:], ctr[:])
		c.block.Encrypt(c.s[16*j:16*j+16], c.blk[:])
	}
	return c.s[:c.d]
}

// round returns the round number of the k-th step: rounds run 0..9 to
// encrypt and 9..0 to decrypt.
func round(k int, decrypt bool) int {
	if decrypt {
		return ff1Rounds - 1 - k
	}
	return k
}

// cryptUint64 runs the rounds with both halves held in uint64, valid when
// radix^v <= 2^63.
func (c *ff1Call) cryptUint64(x string, decrypt bool) string {
	r := uint64(c.radix)
	a, b := parseUint64(x[:c.u], r), parseUint64(x[c.u:], r)
	pu, pv := powUint64(r, c.u), powUint64(r, c.v)
	var num [8]byte
	for k := range ff1Rounds {
		i := round(k, decrypt)
		m := pu
		if i%2 == 1 {
			m = pv
		}
		if decrypt {
			binary.BigEndian.PutUint64(num[:], a)
			y := modBytes(c.prf(i, num[8-c.b:]), m)
			a, b = (b+m-y)%m, a
		} else {
			binary.BigEndian.PutUint64(num[:], b)
			y := modBytes(c.prf(i, num[8-c.b:]), m)
			a, b = b, (a+y)%m
		}
	}
	out := make([]byte, c.u+c.v)
	formatUint64(out[:c.u], a, r)
	formatUint64(out[c.u:], b, r)
	return string(out)
}

// cryptBig runs the rounds with math/big, for halves too long for uint64.
func (c *ff1Call) cryptBig(x string, decrypt bool) (string, error) {
	a, okA := new(big.Int).SetString(x[:c.u], c.radix)
	b, okB := new(big.Int).SetString(x[c.u:], c.radix)
	if !okA || !okB {
		return "", fmt.Errorf("%w: not numerals of radix %d", ErrDomain, c.radix)
	}
	r := big.NewInt(int64(c.radix))
	pu := new(big.Int).Exp(r, big.NewInt(int64(c.u)), nil)
	pv := new(big.Int).Exp(r, big.NewInt(int64(c.v)), nil)
	num := make([]byte, c.b)
	y := new(big.Int)
	for k := range ff1Rounds {
		i := round(k, decrypt)
		m := pu
		if i%2 == 1 {
			m = pv
		}
		in := b
		if decrypt {
			in = a
		}
		y.SetBytes(c.prf(i, in.FillBytes(num)))
		if decrypt {
			next := new(big.Int).Sub(b, y)
			a, b = next.Mod(next, m), a
		} else {
			next := new(big.Int).Add(a, y)
			a, b = b, next.Mod(next, m)
		}
	}
	return padNumerals(a.Text(c.radix), c.u) + padNumerals(b.Text(c.radix), c.v), nil
}

// parseUint64 returns NUM_radix(s); s is checked and radix^len(s) <= 2^63.
func parseUint64(s string, radix uint64) uint64 {
	var x uint64
	for i := 0; i < len(s); i++ {
		x = x*radix + uint64(numeralValue(s[i]))
	}
	return x
}

// formatUint64 writes STR^len(dst)_radix(x) into dst.
func formatUint64(dst []byte, x, radix uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = ff1Alphabet[x%radix]
		x /= radix
	}
}

func powUint64(radix uint64, n int) uint64 {
	p := uint64(1)
	for range n {
		p *= radix
	}
	return p
}

// modBytes returns NUM(s) mod m, reading s as a big-endian integer.
func modBytes(s []byte, m uint64) uint64 {
	head := len(s) % 8
	var r uint64
	for _, c := range s[:head] {
		r = r<<8 | uint64(c)
	}
	r %= m
	for off := head; off < len(s); off += 8 {
		r = bits.Rem64(r, binary.BigEndian.Uint64(s[off:]), m)
	}
	return r
}

// padNumerals left-pads s with zero numerals to n characters.
func padNumerals(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return string(bytes.Repeat([]byte{'0'}, n-len(s))) + s
}
