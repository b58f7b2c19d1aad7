//go:build linux

package badgerstore

import "golang.org/x/sys/unix"

// lowerThreadPriority gives the calling OS thread (locked to its
// goroutine) the lowest scheduling priority, nice 19: on Linux a nice
// value is per thread. Raising one's own nice needs no privilege; a
// failure leaves the thread as it was.
func lowerThreadPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
}
