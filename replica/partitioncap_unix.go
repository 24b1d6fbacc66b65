//go:build unix

package replica

import "syscall"

// openFileLimit is the process's soft RLIMIT_NOFILE, or 0 when unknown or
// unlimited.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) {
		return 0
	}
	return rl.Cur
}
