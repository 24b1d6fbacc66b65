package testbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A package that does not build fails with the compiler's words and leaves
// no directory behind.
func TestBuildFailureRemovesTheDirectory(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "shoal-testbin-test-*"))
	_, err := Build("shoal-testbin-test-", "github.com/shoalmq/shoal/internal/testbin/nosuchpackage")
	// The compiler names the import path again after the program's name.
	if err == nil || !strings.HasPrefix(err.Error(), "building nosuchpackage: ") || strings.Count(err.Error(), "nosuchpackage") < 2 {
		t.Fatalf("err = %v, want the failed build of nosuchpackage", err)
	}
	if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "shoal-testbin-test-*")); len(after) != len(before) {
		t.Fatalf("directories %v after the failed build, %v before", after, before)
	}
}
