// Package testbin builds the module's programs for tests that run them as
// processes of their own.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// Build compiles the packages with import paths pkgs into a new temporary
// directory whose name starts with prefix, each program named after the
// last element of its import path, and returns the directory; the caller
// removes it. On an error the directory is already gone, and the error
// carries the compiler's output.
func Build(prefix string, pkgs ...string) (dir string, err error) {
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", err
	}
	for _, pkg := range pkgs {
		bin := filepath.Join(dir, path.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("building %s: %v\n%s", path.Base(pkg), err, out)
		}
	}
	return dir, nil
}
