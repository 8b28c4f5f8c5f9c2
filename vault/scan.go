package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/store"
)

// scanPage is how many records and keys one storage round trip fetches.
const scanPage = 1000

// ErrStop, returned by a Scan callback, ends the scan early without error.
var ErrStop = errors.New("vault: stop scanning")

// Scan calls fn with every subject's record, site by site in configuration
// order and by subject id (byte order) within a site, decrypting as it
// goes; each subject is visited once, at its home site (replica copies are
// skipped). It streams: memory does not grow with the number of records.
// Subjects whose key is gone (erased) are skipped. fn's Record is fresh and
// may be kept. An error from fn ends the scan and is returned, unless it is
// ErrStop.
func (v *Vault) Scan(ctx context.Context, fn func(Record) error) error {
	for _, name := range v.order {
		if err := v.scanSite(ctx, v.sites[name], fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (v *Vault) scanSite(ctx context.Context, site Site, fn func(Record) error) error {
	var (
		after   string
		keyPage []store.Key
		keyNext int
		keyDone bool
	)
	// nextKey returns the key for subject, advancing through the keys in
	// the same byte order as the records; nil if the subject has none.
	nextKey := func(subject string) (*store.Key, error) {
		for {
			for keyNext < len(keyPage) && keyPage[keyNext].Subject < subject {
				keyNext++
			}
			if keyNext < len(keyPage) {
				if keyPage[keyNext].Subject == subject {
					return &keyPage[keyNext], nil
				}
				return nil, nil
			}
			if keyDone {
				return nil, nil
			}
			from := "" // the first page starts at the beginning
			if len(keyPage) > 0 {
				from = keyPage[len(keyPage)-1].Subject
			}
			page, err := site.Store.ScanKeys(ctx, from, scanPage)
			if err != nil {
				return nil, fmt.Errorf("vault: scan keys at %s: %w", site.Name, err)
			}
			keyPage, keyNext, keyDone = page, 0, len(page) < scanPage
		}
	}
	for {
		page, err := site.Store.ScanRecords(ctx, after, scanPage)
		if err != nil {
			return fmt.Errorf("vault: scan records at %s: %w", site.Name, err)
		}
		for _, sealed := range page {
			k, err := nextKey(sealed.Subject)
			if err != nil {
				return err
			}
			if k == nil {
				continue // erased: the key is gone
			}
			dk, err := site.KEK.Unwrap(k.Wrapped, keys.KeyAAD(site.Name, sealed.Subject))
			if err != nil {
				return fmt.Errorf("vault: unwrap data key at %s: %w", site.Name, err)
			}
			rec, _, err := v.open(sealed.Subject, site.Name, dk, sealed)
			if err != nil {
				return err
			}
			if rec.Site != site.Name {
				continue // a replica's copy; the subject is visited at its home
			}
			rec.Handle = k.Handle
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].Subject
	}
}
