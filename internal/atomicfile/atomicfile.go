// Package atomicfile writes small files (keys, state) so that a crash or a
// concurrent writer never leaves a partial file: the data goes to a synced
// temporary file in the same directory, which is then linked or renamed
// into place, and the directory is synced.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Create writes data to a new file at path with mode perm. If path exists,
// it fails with an error wrapping os.ErrExist and leaves the file alone, so
// of several concurrent creators exactly one wins.
func Create(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Link)
}

// Replace writes data to path with mode perm, replacing any file there:
// readers see the old content or the new, never a mix.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

func write(path string, data []byte, perm os.FileMode, place func(from, to string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a link, the temporary name; after a rename, nothing
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
