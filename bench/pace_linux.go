package bench

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

const clockMonotonic = 1

type itimerspec struct {
	interval syscall.Timespec
	value    syscall.Timespec
}

// pacer sleeps on a timerfd(2) read through the runtime's network poller:
// the kernel timer fires with no slack, readiness wakes the poller at once,
// and no thread or P is held while waiting. If a timerfd cannot be made the
// pacer falls back to the runtime's timers.
type pacer struct {
	fd int
	f  *os.File
}

func newPacer() *pacer {
	fd, _, errno := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic,
		syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return &pacer{fd: -1}
	}
	// A non-blocking descriptor makes a pollable File.
	return &pacer{fd: int(fd), f: os.NewFile(fd, "timerfd")}
}

func (p *pacer) sleep(d time.Duration) {
	if p.f == nil || d <= 0 {
		time.Sleep(d)
		return
	}
	spec := itimerspec{value: syscall.NsecToTimespec(int64(d))}
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(p.fd), 0,
		uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		time.Sleep(d)
		return
	}
	var expirations [8]byte
	if _, err := p.f.Read(expirations[:]); err != nil {
		time.Sleep(d)
	}
}

func (p *pacer) close() {
	if p.f != nil {
		_ = p.f.Close()
	}
}
