// Package testbin builds the module's programs for tests that run them as
// processes of their own.
package testbin

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// Build compiles the package with import path pkg into dir/name and returns
// the program's path. The error carries the compiler's output.
func Build(dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, out)
	}
	return bin, nil
}
