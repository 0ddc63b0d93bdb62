package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
)

// results are the counts of the checks.
type results struct {
	envelopes, badSent   int
	lost, disordered     int // in Centrifugo's history
	historyDuplicates    int
	subLost, subDisorder int            // at the subscribers, after dropping duplicates by id
	subDuplicates        int            // dropped by id at the subscribers (counted, allowed)
	subDuplicatesBy      map[string]int // by subscriber
	browserMsgs          int            // what the page's handlers saw
	browserLost          int
	browserDisorder      int // channels out of order at the browser
	browserDuplicates    int // ids its handlers saw twice
	browserUnrecovered   []string
	browserStates        int // connection state changes of the page
	deadRight            int
	deadWrong            []string // missing, wrong code, unexpected or doubled
	answered, timedOut   int
	wrongReplies         []string
	requestLost          int // answered ok but not in the history
	accessViolations     int
	errs                 []string
}

// check reads everything back and fails the test on any broken guarantee.
func (r *run) check(t *testing.T) results {
	t.Helper()
	r.observe()
	r.mu.Lock()
	defer r.mu.Unlock()
	res := results{badSent: len(r.bad), timedOut: r.timedOut, wrongReplies: r.wrong}
	defer func() { res.errs = r.errs }()
	c := r.s.cents[0]

	// Centrifugo's history: every valid envelope once, in order.
	for _, ch := range r.valid {
		n := r.sent[ch]
		res.envelopes += n
		h := c.History(t, ch, r.cfg.historyMax)
		if len(h) > n {
			res.historyDuplicates += len(h) - n
		}
		next := 0
		for _, p := range h {
			d, _, err := dataOf(p.Data)
			switch {
			case err != nil:
				r.errs = append(r.errs, err.Error())
			case d == next:
				next++
			case d < next:
				// counted above as a duplicate
			default:
				res.disordered++
				r.errs = append(r.errs, fmt.Sprintf("history of %s: offset %d holds %d, want %d (%s)", ch, p.Offset, d, next, around(h, p.Offset)))
				next = d + 1
			}
		}
		if next < n {
			res.lost += n - next
		}
	}
	// Requests: each one answered ok is in its channel's history, once.
	for _, ch := range r.reqChs {
		h := c.History(t, ch, r.cfg.historyMax)
		in := map[int]int{}
		for _, p := range h {
			if d, _, err := dataOf(p.Data); err == nil {
				in[d]++
			}
		}
		for _, d := range r.answered[ch] {
			res.answered++
			if in[d] == 0 {
				res.requestLost++
			}
		}
		for _, k := range in {
			if k > 1 {
				res.historyDuplicates += k - 1
			}
		}
	}

	// Subscribers: every envelope of their channels, in order; duplicates
	// (redeliveries with the same id) dropped and counted.
	res.subDuplicatesBy = map[string]int{}
	arrivals := map[string][]time.Time{} // at all-1, by channel
	for _, s := range r.subs {
		got := map[string][]int{}
		seen := map[string]bool{}
		for _, p := range s.Drain() {
			if !s.channels[p.Channel] {
				res.accessViolations++
				continue
			}
			d, id, err := dataOf(p.Data)
			if err != nil {
				r.errs = append(r.errs, err.Error())
				continue
			}
			if seen[id] {
				res.subDuplicates++
				res.subDuplicatesBy[s.name]++
				continue
			}
			seen[id] = true
			got[p.Channel] = append(got[p.Channel], d)
			if s.name == "all-1" && !slices.Contains(r.reqChs, p.Channel) {
				arrivals[p.Channel] = append(arrivals[p.Channel], p.At)
				r.arrived = append(r.arrived, p.At)
			}
		}
		for _, ch := range r.valid {
			if !s.channels[ch] {
				continue
			}
			for i, d := range got[ch] {
				if d != i {
					res.subDisorder++
					r.errs = append(r.errs, fmt.Sprintf("subscriber %s on node %d: %s's %dth publication holds %d", s.name, s.node+1, ch, i, d))
					break
				}
			}
			if len(got[ch]) < r.sent[ch] {
				res.subLost += r.sent[ch] - len(got[ch])
			}
		}
	}

	for i := range r.outcomes {
		o := &r.outcomes[i]
		o.channelGap, o.gapChannel, o.medianGap = channelGaps(arrivals, r.valid, o.start, o.end)
		o.gap, _, _ = channelGaps(map[string][]time.Time{"": r.arrived}, []string{""}, o.start, o.end)
	}

	// The browser: every envelope of the public channels once, in order;
	// nothing of another channel.
	r.checkBrowser(&res)

	// Dead letters: exactly the bad envelopes, each with its code.
	dead := r.readDead(t)
	for body, code := range r.bad {
		switch got := dead[body]; {
		case len(got) == 0:
			res.deadWrong = append(res.deadWrong, fmt.Sprintf("missing: %.60s (%s)", body, code))
		case len(got) > 1:
			res.deadWrong = append(res.deadWrong, fmt.Sprintf("dead-lettered %d times: %.60s", len(got), body))
		case got[0] != code:
			res.deadWrong = append(res.deadWrong, fmt.Sprintf("code %s, want %s: %.60s", got[0], code, body))
		default:
			res.deadRight++
		}
	}
	for body := range dead {
		if _, ok := r.bad[body]; !ok {
			res.deadWrong = append(res.deadWrong, fmt.Sprintf("valid envelope dead-lettered: %.60s (%v)", body, dead[body]))
		}
	}

	for what, n := range map[string]int{
		"lost in history": res.lost, "out of order in history": res.disordered,
		"duplicates in history": res.historyDuplicates, "lost at subscribers": res.subLost,
		"channels out of order at subscribers": res.subDisorder, "access violations": res.accessViolations,
		"answered requests missing from history": res.requestLost,
		"lost at the browser":                    res.browserLost, "channels out of order at the browser": res.browserDisorder,
		"duplicates at the browser": res.browserDuplicates, "channels the browser could not recover": len(res.browserUnrecovered),
	} {
		if n != 0 {
			t.Errorf("%s: %d", what, n)
		}
	}
	for _, list := range [][]string{res.deadWrong, res.wrongReplies, r.errs} {
		for i, s := range list {
			if i == 20 {
				t.Errorf("… %d more", len(list)-20)
				break
			}
			t.Error(s)
		}
	}
	return res
}

// checkBrowser reads what the browser page's handlers saw and counts
// what was lost, out of order, doubled or not the page's to see (an
// anonymous visitor sees public channels only).
func (r *run) checkBrowser(res *results) {
	msgs, states, unrecovered, err := r.browser.take()
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("browser: %v", err))
		return
	}
	res.browserMsgs, res.browserStates, res.browserUnrecovered = len(msgs), len(states), unrecovered
	got := map[string][]int{}
	seen := map[string]bool{}
	for _, m := range msgs {
		if levelOf(r.channels, m.Channel) != instant.LevelPublic {
			res.accessViolations++
			r.errs = append(r.errs, fmt.Sprintf("the browser, an anonymous visitor, received %s", m.Channel))
			continue
		}
		if seen[m.ID] {
			res.browserDuplicates++
			continue
		}
		seen[m.ID] = true
		var d int
		if err := json.Unmarshal(m.Data, &d); err != nil {
			r.errs = append(r.errs, fmt.Sprintf("browser: message %s on %s: data %s", m.ID, m.Channel, m.Data))
			continue
		}
		got[m.Channel] = append(got[m.Channel], d)
	}
	for _, ch := range r.valid {
		if levelOf(r.channels, ch) != instant.LevelPublic {
			continue
		}
		for i, d := range got[ch] {
			if d != i {
				res.browserDisorder++
				r.errs = append(r.errs, fmt.Sprintf("browser: %s's %dth message holds %d", ch, i, d))
				break
			}
		}
		res.browserLost += max(0, r.sent[ch]-len(got[ch]))
	}
	if res.browserLost > 0 || len(unrecovered) > 0 {
		r.errs = append(r.errs, fmt.Sprintf("browser: connection states %v, unrecovered %v", states, unrecovered))
	}
}

// channelGaps returns, over the channels, the longest time within the
// window from..to between two consecutive arrivals (arrivals by channel,
// in order), its channel, and the median of each channel's longest.
func channelGaps(arrivals map[string][]time.Time, channels []string, from, to time.Time) (longest time.Duration, channel string, median time.Duration) {
	var each []time.Duration
	for _, ch := range channels {
		at := arrivals[ch]
		var worst time.Duration
		for i := 1; i < len(at); i++ {
			if at[i].After(from) && at[i-1].Before(to) {
				// The part of the silence inside the window.
				worst = max(worst, minTime(at[i], to).Sub(maxTime(at[i-1], from)))
			}
		}
		each = append(each, worst)
		if worst > longest {
			longest, channel = worst, ch
		}
	}
	slices.Sort(each)
	if len(each) > 0 {
		median = each[len(each)/2]
	}
	return longest, channel, median
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// around returns the data of the publications near offset in h.
func around(h []stacktest.Received, offset uint64) string {
	var out []string
	for _, p := range h {
		if p.Offset+3 >= offset && p.Offset <= offset+3 {
			d, _, _ := dataOf(p.Data)
			out = append(out, fmt.Sprintf("%d:%d", p.Offset, d))
		}
	}
	return strings.Join(out, " ")
}

// readDead returns the codes of the dead letters in INSTANT_DEAD, by
// body. A read that fails (the JetStream API may not answer for a while
// after the faults) is tried again, at most 10 times.
func (r *run) readDead(t *testing.T) map[string][]instant.Code {
	t.Helper()
	var err error
	for range 10 {
		var out map[string][]instant.Code
		if out, err = r.tryReadDead(t); err == nil {
			return out
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("reading INSTANT_DEAD: %v", err)
	return nil
}

func (r *run) tryReadDead(t *testing.T) (map[string][]instant.Code, error) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := r.s.js.Stream(ctx, "INSTANT_DEAD")
	if err != nil {
		return nil, err
	}
	state := st.CachedInfo().State
	out := map[string][]instant.Code{}
	for seq := state.FirstSeq; seq <= state.LastSeq && state.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		out[string(m.Data)] = append(out[string(m.Data)], instant.Code(m.Header.Get("Instant-Error")))
	}
	return out, nil
}

// report is the summary table of the run in Markdown.
func (r *run) report(res results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# instant chaos run\n\n")
	elapsed := time.Since(r.began)
	fmt.Fprintf(&b, "%d valid envelopes on %d channels and %d bad ones from %d producers (target %d/s; %.0f/s averaged over the whole run), %d requests; "+
		"3 NATS nodes, 2 Centrifugo nodes on Redis, 3 bridge workers, 1 auth; %d centrifuge-go subscribers and a Chromium page. Duration %v.\n\n",
		res.envelopes, len(r.valid), res.badSent, r.cfg.producers, r.cfg.rate, float64(res.envelopes+res.badSent)/elapsed.Seconds(),
		res.answered+res.timedOut+len(res.wrongReplies), len(r.subs), elapsed.Round(time.Second))
	fmt.Fprintf(&b, "| check | result |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(&b, "| %s | %v |\n", k, v) }
	row("lost (history)", res.lost)
	row("out of order (history)", res.disordered)
	row("duplicates (history)", res.historyDuplicates)
	row("lost (subscribers)", res.subLost)
	row("channels out of order (subscribers)", res.subDisorder)
	var by []string
	for _, name := range sortedKeys(res.subDuplicatesBy) {
		by = append(by, fmt.Sprintf("%s %d", name, res.subDuplicatesBy[name]))
	}
	dups := strconv.Itoa(res.subDuplicates)
	if len(by) > 0 {
		dups += " (" + strings.Join(by, ", ") + ")"
	}
	row("duplicates seen by raw centrifuge-go subscribers (dropped by id)", dups)
	row("browser: messages / lost / channels out of order / duplicates", fmt.Sprintf("%d / %d / %d / %d", res.browserMsgs, res.browserLost, res.browserDisorder, res.browserDuplicates))
	row("browser: connection state changes / channels not recovered", fmt.Sprintf("%d / %d", res.browserStates, len(res.browserUnrecovered)))
	row("dead letters right / bad envelopes", fmt.Sprintf("%d / %d", res.deadRight, res.badSent))
	row("dead letters wrong", len(res.deadWrong))
	row("requests answered / timed out / wrong", fmt.Sprintf("%d / %d / %d", res.answered, res.timedOut, len(res.wrongReplies)))
	row("publish retries (producer)", r.retries)
	row("access violations", res.accessViolations)
	row("instant processes restarted after exit status 1", fmt.Sprintf("%d %v", len(r.restarts), r.restarts))
	for _, name := range sortedKeys(r.peakRSS) {
		row("peak RSS "+name, fmt.Sprintf("%.1f MiB", float64(r.peakRSS[name])/(1<<20)))
	}
	fmt.Fprintf(&b, "\nRecovery time of a fault: the longest time in which one channel received nothing at a subscriber "+
		"on the Centrifugo node no fault kills, from the fault until everything published before its end was relayed "+
		"(at this rate a channel gets one every %v).\n\n", (time.Duration(len(r.valid)) * time.Second / time.Duration(r.cfg.rate)).Round(time.Millisecond))
	fmt.Fprintf(&b, "| # | fault | at | all relayed after | longest time no channel got anything | recovery time (channel) | median over channels |\n|---|---|---|---|---|---|---|\n")
	for i, o := range r.outcomes {
		fmt.Fprintf(&b, "| %d | %s | %.1fs | %v | %v | %v (%s) | %v |\n", i+1, o.name, o.start.Sub(r.began).Seconds(),
			o.end.Sub(o.start).Round(100*time.Millisecond), o.gap.Round(100*time.Millisecond),
			o.channelGap.Round(100*time.Millisecond), o.gapChannel, o.medianGap.Round(100*time.Millisecond))
	}
	if len(r.notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}
