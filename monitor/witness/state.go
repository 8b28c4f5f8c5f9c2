package witness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/internal/atomicfile"
)

// ErrCorruptState is matched by New's error when the state file is damaged
// or does not belong to this witness and these logs.
var ErrCorruptState = errors.New("witness: corrupt state file")

// stateFile is the JSON of the state file: for each origin, the latest
// checkpoint cosigned, as a signed note carrying the log's signature and
// this witness's cosignature.
type stateFile struct {
	Checkpoints map[string]string `json:"checkpoints"`
}

// loadState reads the state file at path; a missing file is an empty
// state. Every checkpoint must parse and carry this witness's cosignature
// (cosig) and, for a configured origin, the log's signature. Checkpoints of
// origins no longer configured are kept as they are.
func loadState(path string, logs map[string]note.Verifier, cosig note.Verifier) (map[string]*cosigned, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*cosigned{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: read state: %w", err)
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrCorruptState, path, fmt.Sprintf(format, args...))
	}
	var sf stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, corrupt("data after the JSON object")
	}
	if sf.Checkpoints == nil {
		return nil, corrupt("no \"checkpoints\" object")
	}
	latest := make(map[string]*cosigned, len(sf.Checkpoints))
	for origin, signed := range sf.Checkpoints {
		verifiers := []note.Verifier{cosig}
		logKey, configured := logs[origin]
		if configured {
			verifiers = append(verifiers, logKey)
		}
		n, err := note.Open([]byte(signed), note.VerifierList(verifiers...))
		if err != nil {
			return nil, corrupt("checkpoint of %q: %v", origin, err)
		}
		if len(n.Sigs) != len(verifiers) {
			return nil, corrupt("checkpoint of %q lacks the log's signature or this witness's cosignature", origin)
		}
		cp, err := auditlog.ParseCheckpoint([]byte(n.Text))
		if err != nil {
			return nil, corrupt("checkpoint of %q: %v", origin, err)
		}
		if cp.Origin != origin {
			return nil, corrupt("checkpoint of origin %q filed under %q", cp.Origin, origin)
		}
		latest[origin] = &cosigned{size: cp.Size, hash: cp.Hash, note: []byte(signed)}
	}
	return latest, nil
}

// saveState replaces the state file with latest: synced, atomically, 0600.
func saveState(path string, latest map[string]*cosigned) error {
	sf := stateFile{Checkpoints: make(map[string]string, len(latest))}
	for origin, c := range latest {
		sf.Checkpoints[origin] = string(c.note)
	}
	data, err := json.MarshalIndent(sf, "", "\t")
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, append(data, '\n'), 0o600)
}
