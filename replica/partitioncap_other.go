//go:build !unix

package replica

// openFileLimit is unknown here: no descriptor-derived partition cap.
func openFileLimit() uint64 { return 0 }
