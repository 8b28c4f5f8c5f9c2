package auditlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on DIR/LOCK, so that two
// processes (or two Logs in one process) never append to one journal. The
// lock lasts until the returned file is closed.
func lockDir(dir string) (*os.File, error) {
	path := dir + string(os.PathSeparator) + "LOCK"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB) }); err != nil {
		lerr = err
	}
	if lerr != nil {
		f.Close()
		if errors.Is(lerr, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("auditlog: %s is in use by another process or log", dir)
		}
		return nil, fmt.Errorf("auditlog: lock %s: %w", path, lerr)
	}
	return f, nil
}

// Lock takes the lock that Open holds on the log in dir (Options.Dir), for
// tools that must not run while a server has the log open, such as
// rebuilding the indexes derived from it. It fails at once if the log is in
// use. Close the returned file to release the lock.
func Lock(dir string) (*os.File, error) {
	return lockDir(dir + string(os.PathSeparator) + "journal")
}
