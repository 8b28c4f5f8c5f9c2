package auditlog

import "errors"

var (
	// ErrUnavailable is returned by Append once the log has failed: a journal
	// write or sync failed, or the tree disagreed with the journal. The log
	// stays failed until the process restarts and recovery succeeds; the
	// gateway must refuse requests meanwhile (fail closed).
	ErrUnavailable = errors.New("auditlog: log unavailable")

	// ErrPushback is returned by Append when too many appends are waiting
	// for the journal or for the tree. Nothing was written; the caller
	// should shed load (HTTP 503 with Retry-After).
	ErrPushback = errors.New("auditlog: pushback")

	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("auditlog: log closed")

	// ErrEntryTooLarge is returned for an entry that is empty or longer
	// than MaxEntrySize.
	ErrEntryTooLarge = errors.New("auditlog: entry empty or too large")

	// ErrInvalidEntry is returned by Encode and Decode for an entry that is
	// not a valid, canonical audit entry.
	ErrInvalidEntry = errors.New("auditlog: invalid entry")

	// ErrOutOfRange is returned for an index or tree size beyond the latest
	// published checkpoint (or an empty range).
	ErrOutOfRange = errors.New("auditlog: index or size out of range")

	// ErrCorrupt is returned by Open when the journal or the tree on disk is
	// damaged beyond a torn tail, or when they disagree.
	ErrCorrupt = errors.New("auditlog: corrupt log")

	// ErrVerification is matched (errors.Is) by every error of Verify and
	// VerifyEntry that says the log is not what it should be, as opposed to
	// an error fetching it.
	ErrVerification = errors.New("auditlog: verification failed")
)

// VerificationError says precisely what is wrong with a log: a resource and
// what about it. It matches ErrVerification.
type VerificationError struct {
	Msg string
}

func (e *VerificationError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrVerification) true.
func (e *VerificationError) Is(target error) bool { return target == ErrVerification }
