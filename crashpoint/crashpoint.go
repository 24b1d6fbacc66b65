// Package crashpoint lets crash tests kill a shoal process at a named step
// of a multi-step operation, the way kill -9 would, without racing a
// signal against the step: the step calls Hit with its name, and the
// process kills itself with SIGKILL when SHOALMQ_CRASH_POINT names that step.
// With the variable unset (always, outside such tests) Hit is a comparison
// against the empty string.
package crashpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Env is the environment variable naming the step to crash at. It is not
// SHOAL_-prefixed: those variables are broker config keys.
const Env = "SHOALMQ_CRASH_POINT"

// armed is the step named in the environment when the process started.
var armed = os.Getenv(Env)

// Hit kills the process with SIGKILL if name is the armed step. Nothing
// deferred runs and nothing buffered is flushed: what is not durable by
// now is lost, as in a real crash. It writes one line to stderr first, so
// a test can tell the crash from any other death.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint: %s reached, killing the process\n", name)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not delivered synchronously; never go on
}
