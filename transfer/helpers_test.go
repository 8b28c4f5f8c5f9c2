package transfer

import (
	"bytes"
	"testing"

	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

func defaultSchema(t testing.TB) *schema.Schema {
	t.Helper()
	sch, err := schema.New(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func testTransformer(t testing.TB) *pseudonym.Transformer {
	t.Helper()
	tok, err := pseudonym.NewTokenizer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	siv, err := pseudonym.NewSIV(bytes.Repeat([]byte{2}, 64))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := pseudonym.NewTransformer(pseudonym.Keys{HMAC: tok, SIV: siv, FF1Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
