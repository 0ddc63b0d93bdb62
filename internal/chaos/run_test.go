package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/internal/stacktest"
)

// run is one chaos run: the stack and the load on it.
type run struct {
	cfg      settings
	s        *stack
	valid    []string
	reqChs   []string
	channels []instant.Channel // the registry
	subs     []*subscriber
	browser  *browser
	outcomes []outcome
	began    time.Time
	log      func(string)

	done     chan struct{} // closed to stop the producers
	wg       sync.WaitGroup
	produced atomic.Int64 // valid and bad envelopes stored by JetStream

	mu       sync.Mutex
	sent     map[string]int          // valid envelopes stored, by channel: data 0…n-1
	bad      map[string]instant.Code // body of each bad envelope → its code
	answered map[string][]int        // request data answered ok, by channel
	reqNext  map[string]int
	timedOut int
	wrong    []string
	retries  int
	restarts []string // unplanned restarts of instant processes
	errs     []string
	notes    []string
	peakRSS  map[string]int64
	pids     map[int]bool
	relayed  []point            // the workers' relayed envelopes over time
	arrived  []time.Time        // first arrivals of stream envelopes at subscriber all-1 (set by check)
	counters map[string]float64 // last relayed_total read from each worker
	total    float64
}

// point is the sum of the workers' relayed_total at a time.
type point struct {
	at      time.Time
	relayed float64
}

// subscriber is a centrifuge-go client on one Centrifugo node.
type subscriber struct {
	*stacktest.Subscriber
	name     string
	node     int
	channels map[string]bool
}

func newRun(t *testing.T, cfg settings) *run {
	valid, reqChs, all := channelsOf(cfg)
	r := &run{
		cfg: cfg, valid: valid, reqChs: reqChs, channels: all,
		done: make(chan struct{}), sent: map[string]int{}, bad: map[string]instant.Code{},
		answered: map[string][]int{}, reqNext: map[string]int{},
		peakRSS: map[string]int64{}, pids: map[int]bool{}, counters: map[string]float64{},
		log: func(s string) { t.Log(s) },
	}
	r.s = startStack(t, all, cfg.historyMax)
	subscribed := append(append([]string(nil), valid...), reqChs...)
	for i, c := range r.s.cents {
		// Through the load balancer that prefers node i: when node i
		// dies, its clients reconnect to the other node. One client sees
		// every channel, with tokens signed here; alice's, with the
		// tokens instant auth gives her at login, those she may see.
		wsURL := "ws://" + r.s.ws[i].Addr + "/connection/websocket"
		name := fmt.Sprintf("all-%d", i+1)
		tokens := make([]stacktest.ChannelToken, 0, len(subscribed))
		for _, ch := range subscribed {
			tokens = append(tokens, stacktest.ChannelToken{Channel: ch, Token: c.SubToken(t, name, ch)})
		}
		r.subs = append(r.subs, &subscriber{Subscriber: stacktest.SubscribeWithTokens(t, wsURL, name, c.ConnToken(t, name), tokens...),
			name: name, node: i, channels: setOf(subscribed)})
		ws, given := r.s.login(t, "alice", alicePassword)
		mine := map[string]bool{}
		tokens = tokens[:0]
		for _, ct := range given {
			if ct.Channel == staffChannel {
				t.Errorf("instant auth gave alice a token for %s, a staff channel", staffChannel)
			}
			// Not "nons:chaos", whose namespace Centrifugo lacks.
			if slices.Contains(subscribed, ct.Channel) {
				mine[ct.Channel] = true
				tokens = append(tokens, ct)
			}
		}
		if len(tokens) != len(subscribed)-1 {
			t.Errorf("instant auth gave alice tokens for %d of the %d channels she may see", len(tokens), len(subscribed)-1)
		}
		// Without a token, and with a token of a channel she may see,
		// Centrifugo refuses her the staff channel.
		if err := stacktest.TrySubscribeWithToken(t, wsURL, "alice", ws, staffChannel, ""); err == nil {
			t.Errorf("alice subscribed to %s without a token", staffChannel)
		}
		if err := stacktest.TrySubscribeWithToken(t, wsURL, "alice", ws, staffChannel, tokens[0].Token); err == nil {
			t.Errorf("alice subscribed to %s with the token of %s", staffChannel, tokens[0].Channel)
		}
		name = fmt.Sprintf("alice-%d", i+1)
		r.subs = append(r.subs, &subscriber{
			Subscriber: stacktest.SubscribeWithTokens(t, wsURL, name, ws, tokens...),
			name:       name, node: i, channels: mine})
	}
	// The browser page on the node that dies, as an anonymous visitor.
	r.browser = openBrowser(t, r.s.authURL, "ws://"+r.s.ws[1].Addr+"/connection/websocket")
	t.Cleanup(r.stop)
	return r
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

func (r *run) logf(format string, args ...any) {
	r.log(fmt.Sprintf("%6.1fs ", time.Since(r.began).Seconds()) + fmt.Sprintf(format, args...))
}

// note logs a finding of the run that the report lists too.
func (r *run) note(format string, args ...any) {
	r.logf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 50 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

// start starts the producers, the requester and the process sampler.
func (r *run) start(t *testing.T) {
	r.began = time.Now()
	for p := range r.cfg.producers {
		nc := stacktest.Connect(t, r.s.nats.URL(t, "producer", p))
		var own []string
		for i, ch := range r.valid {
			if i%r.cfg.producers == p {
				own = append(own, ch)
			}
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.produce(nc, p, own) }()
	}
	nc := stacktest.Connect(t, r.s.nats.URL(t, "producer", 1))
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.request(nc) }()
	go func() { defer r.wg.Done(); r.sample() }()
}

// stop stops the load (idempotent).
func (r *run) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
}

// badKinds are the rejections the producers provoke, one in every 100
// envelopes, in turn: channel (when used) and body of envelope n.
var badKinds = []struct {
	code instant.Code
	make func(ch, tag string) (subject, body string)
}{
	{instant.CodeBadEnvelope, func(ch, tag string) (string, string) {
		return "instant.publish." + ch, fmt.Sprintf(`{"data":0,"tag":%q}`, tag)
	}},
	{instant.CodeTooLarge, func(ch, tag string) (string, string) {
		return "instant.publish." + ch, fmt.Sprintf(`{"message":%q}`, tag+strings.Repeat("x", maxPayload))
	}},
	{instant.CodeUnknownChannel, func(_, tag string) (string, string) {
		return "instant.publish.nosuch", fmt.Sprintf(`{"message":%q}`, tag)
	}},
	{instant.CodeInactiveChannel, func(_, tag string) (string, string) {
		return "instant.publish.inactive", fmt.Sprintf(`{"message":%q}`, tag)
	}},
	{instant.CodeLevelMismatch, func(ch, tag string) (string, string) {
		// Superuser: no channel of the run has that level.
		return "instant.publish." + ch, fmt.Sprintf(`{"message":%q,"level":"superuser"}`, tag)
	}},
	{instant.CodeCentrifugoRejected, func(_, tag string) (string, string) {
		return "instant.publish.nons:chaos", fmt.Sprintf(`{"message":%q}`, tag)
	}},
}

// produce publishes on its own channels at its share of the rate, each
// envelope through JetStream with its storage ack, retrying with the same
// Nats-Msg-Id (JetStream drops a stored duplicate) until stored.
func (r *run) produce(nc *nats.Conn, p int, own []string) {
	js, err := jetstream.New(nc)
	if err != nil {
		r.fail("producer %d: %v", p, err)
		return
	}
	perSecond := float64(r.cfg.rate) / float64(r.cfg.producers)
	start := time.Now()
	for i := 0; ; i++ {
		if r.cfg.envelopes > 0 && int(r.produced.Load()) >= r.cfg.envelopes {
			return
		}
		if ahead := time.Duration(float64(i)/perSecond*float64(time.Second)) - time.Since(start); ahead > 0 {
			select {
			case <-r.done:
				return
			case <-time.After(ahead):
			}
		}
		select {
		case <-r.done:
			return
		default:
		}
		ch := own[i%len(own)]
		if i%100 == 99 {
			tag := fmt.Sprintf("bad-%d-%d", p, i)
			kind := badKinds[(i/100)%len(badKinds)]
			subject, body := kind.make(ch, tag)
			if !r.publish(js, subject, body, tag) {
				return
			}
			r.mu.Lock()
			r.bad[body] = kind.code
			r.mu.Unlock()
			continue
		}
		r.mu.Lock()
		seq := r.sent[ch]
		r.mu.Unlock()
		if !r.publish(js, "instant.publish."+ch, fmt.Sprintf(`{"data":%d}`, seq), fmt.Sprintf("%s-%d", ch, seq)) {
			return
		}
		r.mu.Lock()
		r.sent[ch]++
		r.mu.Unlock()
	}
}

// publish stores body on subject, retrying for at most two minutes; it
// reports false when it gave up (and failed the run). A stopping run
// waits for it: an envelope being retried when the load stops (NATS still
// electing a leader after a fault) is stored or fails the run, never left
// unknown.
func (r *run) publish(js jetstream.JetStream, subject, body, id string) bool {
	msg := &nats.Msg{Subject: subject, Data: []byte(body), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			r.produced.Add(1)
			return true
		}
		if attempt == 0 {
			r.mu.Lock()
			r.retries++
			r.mu.Unlock()
		}
		if time.Now().After(deadline) {
			r.fail("publish %s on %s: not stored within 2m: %v", id, subject, err)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// request sends requests on the request channels, each waiting for the
// bridge's outcome for 5s: an answer must be ok for the right channel.
func (r *run) request(nc *nats.Conn) {
	tick := time.NewTicker(time.Second / time.Duration(r.cfg.requests))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		ch := r.reqChs[i%len(r.reqChs)]
		r.mu.Lock()
		seq := r.reqNext[ch]
		r.reqNext[ch]++
		r.mu.Unlock()
		reply, err := nc.Request("instant.request."+ch, fmt.Appendf(nil, `{"data":%d}`, seq), 5*time.Second)
		r.mu.Lock()
		switch {
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders):
			r.timedOut++
		case err != nil:
			r.wrong = append(r.wrong, fmt.Sprintf("%s %d: %v", ch, seq, err))
		default:
			var out struct {
				OK      bool
				Channel string
				Offset  uint64
			}
			if json.Unmarshal(reply.Data, &out) != nil || !out.OK || out.Channel != ch || out.Offset == 0 {
				r.wrong = append(r.wrong, fmt.Sprintf("%s %d: %s", ch, seq, reply.Data))
			} else {
				r.answered[ch] = append(r.answered[ch], seq)
			}
		}
		r.mu.Unlock()
	}
}

// sample records, every 500ms, the PID and peak RSS of every instant
// process.
func (r *run) sample() {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		r.observe()
		r.supervise()
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
	}
}

func (r *run) observe() {
	relayed := map[string]float64{}
	for _, w := range r.s.workers {
		if v, err := w.relayed(); err == nil {
			relayed[w.Name] = v
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, v := range relayed {
		// A restarted worker counts from 0 again.
		if last := r.counters[name]; v >= last {
			r.total += v - last
		} else {
			r.total += v
		}
		r.counters[name] = v
	}
	r.relayed = append(r.relayed, point{time.Now(), r.total})
	for _, p := range r.s.procs() {
		pid := p.PID()
		if pid == 0 {
			continue
		}
		r.pids[pid] = true
		if strings.HasPrefix(p.Name, "bridge") || p.Name == "instant auth" {
			r.peakRSS[p.Name] = max(r.peakRSS[p.Name], stacktest.RSS(pid))
		}
	}
	for _, c := range r.s.cents {
		if pid := c.PID(); pid != 0 {
			r.pids[pid] = true
		}
	}
}

// supervise restarts, as systemd's Restart=on-failure of
// deploy/systemd does (RestartSec=2s), an instant process that exited
// with status 1 on its own, and fails the run: the processes ride out
// the faults (the bridge retries its stream setup while JetStream is not
// ready). Faults kill with signals; those processes are the faults' to
// restart.
func (r *run) supervise() {
	for _, p := range append([]*stacktest.Proc{r.s.auth}, workerProcs(r.s)...) {
		exited, err := p.Exited()
		var exit *exec.ExitError
		if !exited || !errors.As(err, &exit) || exit.ExitCode() != 1 {
			continue
		}
		r.mu.Lock()
		r.restarts = append(r.restarts, fmt.Sprintf("%.1fs %s", time.Since(r.began).Seconds(), p.Name))
		r.mu.Unlock()
		r.logf("%s exited with status 1: restarting it in 2s", p.Name)
		r.fail("%s exited with status 1 on its own", p.Name)
		time.Sleep(2 * time.Second)
		if err := p.TryStart(); err != nil {
			r.fail("restart %s: %v", p.Name, err)
		}
	}
}

// waitProduced waits until the producers stored cfg.envelopes.
func (r *run) waitProduced(t *testing.T) {
	t.Helper()
	bound := time.Duration(r.cfg.envelopes/r.cfg.rate)*time.Second*2 + 5*time.Minute
	deadline := time.Now().Add(bound)
	progress := time.Now()
	for int(r.produced.Load()) < r.cfg.envelopes {
		if time.Now().After(deadline) {
			t.Fatalf("produced %d of %d envelopes within %v", r.produced.Load(), r.cfg.envelopes, bound)
		}
		if time.Since(progress) > 15*time.Second {
			r.logf("produced %d of %d envelopes", r.produced.Load(), r.cfg.envelopes)
			progress = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitRelayed waits until Centrifugo's history holds, on every channel,
// at least what the producers had stored when it was called.
func (r *run) waitRelayed(t *testing.T, what string) {
	t.Helper()
	r.mu.Lock()
	want := make(map[string]int, len(r.sent))
	for ch, n := range r.sent {
		want[ch] = n
	}
	r.mu.Unlock()
	deadline := time.Now().Add(r.cfg.catchUp)
	c := r.s.cents[0]
	for _, ch := range sortedKeys(want) {
		for {
			top, err := c.TryHistoryTop(ch)
			if err == nil && int(top) >= want[ch] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: history of %s holds %d of %d publications after %v (%v)", what, ch, top, want[ch], r.cfg.catchUp, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// procs returns every process of the stack.
func (s *stack) procs() []*stacktest.Proc {
	var ps []*stacktest.Proc
	for _, n := range s.nats.Nodes {
		ps = append(ps, n.Proc)
	}
	for _, w := range s.workers {
		ps = append(ps, w.Proc)
	}
	return append(ps, s.auth, s.redis.Proc)
}

// stopAll stops every process: the instant ones with SIGTERM (each must
// exit 0), then the rest.
func (s *stack) stopAll(t *testing.T) {
	t.Helper()
	for _, p := range append([]*stacktest.Proc{s.auth}, workerProcs(s)...) {
		if !p.Running() {
			continue
		}
		p.Signal(t, syscall.SIGTERM)
		if err := p.Wait(30 * time.Second); err != nil {
			t.Errorf("%s after SIGTERM: %v", p.Name, err)
		}
	}
	for _, c := range s.cents {
		c.Kill(t)
	}
	for _, p := range s.procs() {
		p.Kill()
	}
}

func workerProcs(s *stack) []*stacktest.Proc {
	var ps []*stacktest.Proc
	for _, w := range s.workers {
		ps = append(ps, w.Proc)
	}
	return ps
}

// failover waits until the websocket clients of Centrifugo node 2 (those
// of the load balancer preferring it: all-2, alice-2 and the browser)
// are connected to node 1 and subscribed again, while node 2 is down.
func (r *run) failover(t *testing.T) {
	t.Helper()
	clients := 1 // the browser
	for _, s := range r.subs {
		if s.node == 1 {
			clients++
		}
	}
	b := r.s.ws[1]
	stacktest.WaitFor(t, readyTimeout, "the killed node's clients connected to the other node", func() bool {
		open := b.Open()
		return open[0] == 0 && open[1] >= clients
	})
	for _, s := range r.subs {
		if s.node == 1 {
			s.WaitSubscribed(t, readyTimeout)
		}
	}
	stacktest.WaitFor(t, readyTimeout, "the browser subscribed again", r.browser.subscribed)
}
