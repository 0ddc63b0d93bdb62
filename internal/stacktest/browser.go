package stacktest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// Chromium starts a fresh headless Chromium (own profile in tb.TempDir(),
// no sandbox, no GPU) and returns the context of its first tab, for
// chromedp; the browser is stopped at cleanup. The first action run on
// the context starts it. The test is skipped when Chromium is missing
// and cannot be installed (not root), and fails when it is missing
// otherwise: `make packages` installs it.
func Chromium(tb testing.TB) context.Context {
	tb.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Geteuid() != 0 {
			tb.Skipf("%s is missing and installing it needs root: apt-get install chromium", ChromiumPath)
		}
		tb.Fatalf("%s is missing: run make packages (or make test, which installs it)", ChromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1000, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	tb.Cleanup(cancel)
	return ctx
}
