package gateway

import (
	"encoding/base64"
	"github.com/cloverenclave/clover/transfer"
	"os"
)

func base64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipB64 changes one character of a base64url string.
func flipB64(s string) string {
	b := []byte(s)
	if b[len(b)/2] == 'A' {
		b[len(b)/2] = 'B'
	} else {
		b[len(b)/2] = 'A'
	}
	return string(b)
}

func readAll(path string) ([]byte, error) { return os.ReadFile(path) }

func withName(d transfer.Destination, name string) transfer.Destination {
	d.Name = name
	return d
}
