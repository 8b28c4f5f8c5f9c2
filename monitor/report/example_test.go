package report_test

import (
	"bytes"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/monitor/report"
)

// The monitor renders a period's report, signs it, and a regulator checks
// the pair with the monitor's published verifier key.
func Example() {
	// The monitor's key; a real monitor loads it from its key file.
	skey, vkey, _ := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "monitor.example")
	signer, _ := note.NewSigner(skey)

	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := report.Data{
		Monitor:    "monitor.example",
		MonitorKey: vkey,
		Log:        "clover.example/log",
		From:       from,
		To:         from.AddDate(0, 1, 0),
		Generated:  from.AddDate(0, 1, 0),
		Entries:    1000,
		Counts:     map[string]map[string]int64{report.DimCountry: {"IE": 900, "NO": 100}},
	}
	page, err := report.HTML(d)
	if err != nil {
		fmt.Println(err)
		return
	}
	sig, err := report.Sign(page, report.FormatHTML, d, signer)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The regulator's side: the page, its .sig file and the key.
	signed, err := report.Verify(page, sig, vkey)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(signed.Format, signed.Log, signed.From.Format(time.DateOnly), signed.To.Format(time.DateOnly), signed.Signer)

	page[0] ^= 1
	_, err = report.Verify(page, sig, vkey)
	fmt.Println(err != nil)
	// Output:
	// html clover.example/log 2026-11-01 2026-12-01 monitor.example
	// true
}
