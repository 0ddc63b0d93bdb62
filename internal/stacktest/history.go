package stacktest

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// History returns the publications of channel in Centrifugo's history,
// read through its server API (not through a client subscription), oldest
// first, at most limit of them. It reads in pages of historyPage
// publications, so that a history of large publications is not one reply
// that a loaded machine takes longer than the client timeout to send.
func (c *Centrifugo) History(tb testing.TB, channel string, limit int) []Received {
	tb.Helper()
	var out []Received
	params := map[string]any{"channel": channel}
	for len(out) < limit {
		var raw struct {
			Publications []struct {
				Data   json.RawMessage `json:"data"`
				Offset uint64          `json:"offset"`
			} `json:"publications"`
			Epoch string `json:"epoch"`
		}
		params["limit"] = min(historyPage, limit-len(out))
		if err := c.call("history", params, &raw); err != nil {
			tb.Fatalf("stacktest: history of %q: %v", channel, err)
		}
		for _, p := range raw.Publications {
			out = append(out, Received{Channel: channel, Data: p.Data, Offset: p.Offset})
		}
		if len(raw.Publications) < params["limit"].(int) {
			break
		}
		params["since"] = map[string]any{"offset": out[len(out)-1].Offset, "epoch": raw.Epoch}
	}
	return out
}

// historyPage is how many publications History reads per API call.
const historyPage = 100

// PID returns the process id of the running Centrifugo, or 0.
func (c *Centrifugo) PID() int { return c.pid() }

// RSS returns the resident set size of process pid in bytes, from
// /proc (Linux); 0 when it cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// HistoryTop returns the offset of the newest publication in channel's
// history, through the server API.
func (c *Centrifugo) HistoryTop(tb testing.TB, channel string) uint64 {
	tb.Helper()
	var res struct {
		Offset uint64 `json:"offset"`
	}
	if err := c.call("history", map[string]any{"channel": channel}, &res); err != nil {
		tb.Fatalf("stacktest: history of %q: %v", channel, err)
	}
	return res.Offset
}

// TryHistoryTop is HistoryTop returning the error instead of failing the
// test, for polls that go on while Centrifugo or its engine restarts.
func (c *Centrifugo) TryHistoryTop(channel string) (uint64, error) {
	var res struct {
		Offset uint64 `json:"offset"`
	}
	err := c.call("history", map[string]any{"channel": channel}, &res)
	return res.Offset, err
}
