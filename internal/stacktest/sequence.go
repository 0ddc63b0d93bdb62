package stacktest

import (
	"encoding/json"
	"testing"
)

// Distinct keeps the first publication of each id (the "id" key of the
// publication data), as clients drop redelivered duplicates.
func Distinct(tb testing.TB, pubs []Received) []Received {
	tb.Helper()
	seen := map[string]bool{}
	var out []Received
	for _, r := range pubs {
		var p struct{ ID string }
		if err := json.Unmarshal(r.Data, &p); err != nil || p.ID == "" {
			tb.Fatalf("stacktest: publication without id: %s", r.Data)
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// AssertSequence checks that pubs carry the data 0, 1, … n-1 (the "data"
// key of the publication), each once and in order.
func AssertSequence(tb testing.TB, pubs []Received, n int) {
	tb.Helper()
	if len(pubs) != n {
		tb.Fatalf("got %d publications, want %d", len(pubs), n)
	}
	for i, r := range pubs {
		var p struct{ Data int }
		if err := json.Unmarshal(r.Data, &p); err != nil {
			tb.Fatalf("publication %d: %v", i, err)
		}
		if p.Data != i {
			tb.Fatalf("publication %d holds %d: out of order or missing", i, p.Data)
		}
	}
}
