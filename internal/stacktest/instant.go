package stacktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var instantBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

// InstantBinary returns the path of the instant command built from this
// tree (bin/instant may be stale or missing: `make test` does not build
// it), for tests that run it as a separate process. It is built once per
// test binary, into a temporary folder that RemoveBuilds deletes: call
// it from TestMain after m.Run.
func InstantBinary(tb testing.TB) string {
	tb.Helper()
	root := RepoRoot(tb)
	b := &instantBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "instant-test-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "instant")
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/instant")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/instant: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		tb.Fatalf("stacktest: %v", b.err)
	}
	return b.path
}

// RemoveBuilds deletes what InstantBinary built, if anything.
func RemoveBuilds() {
	if instantBuild.dir != "" {
		os.RemoveAll(instantBuild.dir)
	}
}
