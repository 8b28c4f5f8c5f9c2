package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cloverenclave/clover/internal/sqlitedb"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrNotFound: no incident has the requested ID.
	ErrNotFound = errors.New("not found")
	// ErrInvalidTransition: the incident's state cannot move to the one asked.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrInvalid: an argument (a batch item, a filter, a note) is malformed.
	ErrInvalid = errors.New("invalid input")
)

const (
	// busyTimeout is how long a connection waits for a lock held by another
	// connection or process before failing with SQLITE_BUSY.
	busyTimeout = sqlitedb.BusyTimeout
	// readers is the size of the read-only connection pool.
	readers = 4
)

// Store is the monitor's SQLite database. It is safe for concurrent use.
type Store struct {
	path    string
	writer  *sql.DB // one connection: serialises every write
	reader  *sql.DB // read-only pool
	targets []string
	now     func() time.Time
}

// An Option configures Open.
type Option func(*options)

type options struct {
	targets []Target
	now     func() time.Time
}

// WithTargets sets the webhook targets for which Commit enqueues a delivery
// of every incident it creates. Only the names are kept by the store; the
// same targets are given to NewNotifier, which delivers. Open rejects targets
// that fail ValidateTarget and duplicate names.
func WithTargets(targets ...Target) Option {
	return func(o *options) { o.targets = append(o.targets, targets...) }
}

// WithClock sets the clock the store reads for Created, StateAt and the
// enqueue time of deliveries. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open opens, creating if needed (mode 0600), the database at path and
// brings its schema up to date.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	seen := make(map[string]bool)
	var names []string
	for _, t := range o.targets {
		if err := ValidateTarget(t); err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("incident: duplicate webhook target %q: %w", t.Name, ErrInvalid)
		}
		seen[t.Name] = true
		names = append(names, t.Name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("incident: open %s: %w", path, err)
	}
	s := &Store{path: abs, targets: names, now: o.now}
	if err := s.open(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Store) open() error {
	var err error
	s.writer, s.reader, err = sqlitedb.Open(s.path, readers, sqlitedb.Options{Synchronous: sqlitedb.Full, ForeignKeys: true})
	if err != nil {
		return fmt.Errorf("incident: %w", err)
	}
	if err := migrate(context.Background(), s.writer, migrations(), time.Now()); err != nil {
		return fmt.Errorf("incident: migrate %s: %w", s.path, err)
	}
	return nil
}

// Path returns the database file's absolute path. SQLite keeps recent writes
// in path-wal beside it while the store is open.
func (s *Store) Path() string { return s.path }

// Close closes the database. Further calls on s fail.
func (s *Store) Close() error {
	if err := sqlitedb.Close(s.writer, s.reader); err != nil {
		return fmt.Errorf("incident: close: %w", err)
	}
	return nil
}

// rollback ends tx after a failure, ignoring the error of a transaction that
// is already over.
func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// Times are stored as integer unix microseconds, UTC; 0 stands for the zero
// time.Time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
