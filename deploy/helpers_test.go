package deploy_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/instanthq/instant/internal/stacktest"
)

// readyTimeout bounds every wait for a started process to answer.
const readyTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	stacktest.RemoveBuilds()
	os.Exit(code)
}

// instantBinary is the instant command built from the working tree.
func instantBinary(t *testing.T) string {
	t.Helper()
	return stacktest.InstantBinary(t)
}

// readFile returns the content of a file of this folder.
func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// replaceEach returns s with every old string of pairs (old, new, old,
// new, …) replaced, failing the test when one does not occur exactly want
// times: a deploy file that changed shape must not slip through a test
// that rewrites it.
func replaceEach(t *testing.T, s string, want int, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != want {
			t.Fatalf("%q occurs %d times, want %d", pairs[i], n, want)
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

// startProcess starts bin with args and exactly env (plus PATH), killed
// at cleanup; its output is logged when the test fails.
func startProcess(t *testing.T, name string, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out := &stacktest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stacktest.SetParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
}

// waitHTTP polls url until it answers 200 OK.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v: %v", url, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
