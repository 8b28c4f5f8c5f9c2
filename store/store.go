// Package store defines how Clover keeps a site's sealed records and wrapped
// data keys, and the conformance suite every backend must pass.
//
// A backend stores bytes; it never decides anything and never sees plaintext.
// Records and data keys are kept apart (separate files or schemas) so that a
// copy of the records alone holds no usable key: erasing a subject deletes its
// key, and every copy of its record becomes unreadable (crypto-shredding).
//
// The backends are store/sqlite (embedded, the default) and store/postgres
// (any PostgreSQL-protocol database, through pgx).
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a subject has no record or no key at the site.
var ErrNotFound = errors.New("store: not found")

// Sealed is a subject's record as a backend keeps it: opaque ciphertext plus
// the metadata the enclave needs without decrypting.
type Sealed struct {
	// Subject is the subject id (1–128 characters of [A-Za-z0-9._-]).
	Subject string
	// Ciphertext is the AEAD-sealed record (nonce included); opaque here.
	Ciphertext []byte
	// Updated is when the record was last written (UTC, microsecond precision).
	Updated time.Time
}

// Key is a subject's wrapped data key and log handle, kept apart from the
// record it protects.
type Key struct {
	Subject string
	// Wrapped is the data key sealed under the site's key-encryption key.
	Wrapped []byte
	// KEKID names the key-encryption key that wrapped it, for rotation.
	KEKID string
	// Handle is a random per-subject handle the audit log names the subject by.
	Handle []byte
}

// Store is one site's storage. Implementations are safe for concurrent use.
type Store interface {
	// PutKey stores a subject's wrapped key if it has none; if one exists it
	// is left untouched and returned. It is the only way a key is created, so
	// concurrent first writes of one subject agree on a single key.
	PutKey(ctx context.Context, k Key) (Key, error)
	// GetKey returns the subject's key or ErrNotFound.
	GetKey(ctx context.Context, subject string) (Key, error)
	// DeleteKey destroys the subject's key. Deleting a missing key returns
	// ErrNotFound.
	DeleteKey(ctx context.Context, subject string) error

	// PutRecord inserts or replaces the subject's sealed record, durably.
	PutRecord(ctx context.Context, r Sealed) error
	// GetRecord returns the subject's sealed record or ErrNotFound.
	GetRecord(ctx context.Context, subject string) (Sealed, error)
	// DeleteRecord removes the subject's record. Deleting a missing record
	// returns ErrNotFound.
	DeleteRecord(ctx context.Context, subject string) error

	// ScanRecords returns at most limit records whose subject sorts after
	// after ("" for the first page), in byte order of subject (Go's string
	// order), to page through a site (exports, migrations). ScanKeys pages
	// through the keys in the same order, so that the two can be merged.
	ScanRecords(ctx context.Context, after string, limit int) ([]Sealed, error)
	ScanKeys(ctx context.Context, after string, limit int) ([]Key, error)

	// Close releases the backend's resources.
	Close() error
}

// MaxScan caps the page size of ScanRecords and ScanKeys.
const MaxScan = 10000
