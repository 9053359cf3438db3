package lab

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReservePort: a reserved port is locked against every other open of
// the lock file (those of other test processes as well) until its release,
// and is free when handed out.
func TestReservePort(t *testing.T) {
	port, release, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	if !portFree(port) {
		t.Errorf("reserved port %d is not free", port)
	}
	f, err := os.OpenFile(portLockFile(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lock := func() error {
		return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Start: int64(port), Len: 1})
	}
	if err := lock(); !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
		t.Errorf("lock of reserved port %d from another open = %v, want EAGAIN", port, err)
	}
	release()
	if err := lock(); err != nil {
		t.Errorf("lock of port %d after its release: %v", port, err)
	}
}
