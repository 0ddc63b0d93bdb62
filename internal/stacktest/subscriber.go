package stacktest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

// Timeouts and delays of the websocket client.
const (
	subscribeTimeout  = 10 * time.Second // Subscribe until all confirmed
	historyTimeout    = 10 * time.Second // one History page
	minReconnectDelay = 50 * time.Millisecond
	maxReconnectDelay = time.Second
	pollInterval      = 10 * time.Millisecond
)

// Received is one publication a Subscriber got.
type Received struct {
	Channel string
	Data    []byte
	Offset  uint64    // position in the channel history
	At      time.Time // when it arrived (zero when read from the history)
}

// Subscriber is a real Centrifugo websocket client (centrifuge-go, JSON
// protocol) subscribed to some channels with recovery on. It reconnects
// and resubscribes on its own, recovering what it missed while the
// history survives. Publications of all its channels queue up in arrival
// order until taken with Next or Collect. Its methods are safe for
// concurrent use; it is closed at cleanup.
type Subscriber struct {
	user   string
	client *centrifuge.Client
	subs   map[string]*centrifuge.Subscription // fixed after Subscribe
	events *tailBuffer                         // client events, shown on failure

	mu     sync.Mutex
	queue  []Received
	notify chan struct{} // capacity 1; signalled on every push
}

// Subscribe connects a client as user (with ConnToken) and subscribes it
// to each channel with a SubToken — public channels too: this config lets
// nobody subscribe without a token. It returns once every subscription is
// confirmed and fails the test if one is refused or 10s pass.
func (c *Centrifugo) Subscribe(tb testing.TB, user string, channels ...string) *Subscriber {
	tb.Helper()
	tokens := make([]ChannelToken, len(channels))
	for i, ch := range channels {
		tokens[i] = ChannelToken{Channel: ch, Token: c.SubToken(tb, user, ch)}
	}
	return SubscribeWithTokens(tb, c.WSURL, user, c.ConnToken(tb, user), tokens...)
}

// ChannelToken is a channel and the subscription token to present for it.
type ChannelToken struct {
	Channel, Token string
}

// SubscribeWithTokens is Subscribe with tokens issued elsewhere (e.g. by
// the auth module) against the Centrifugo at wsURL; user only names the
// client in failure messages.
func SubscribeWithTokens(tb testing.TB, wsURL, user, connToken string, channels ...ChannelToken) *Subscriber {
	tb.Helper()
	if len(channels) == 0 {
		tb.Fatalf("stacktest: Subscribe needs at least one channel")
	}
	s := &Subscriber{
		user:   user,
		subs:   make(map[string]*centrifuge.Subscription, len(channels)),
		events: newTailBuffer(64 << 10),
		notify: make(chan struct{}, 1),
	}
	dumpOnFailure(tb, fmt.Sprintf("websocket client events of %q", user), s.events)
	s.client = newClient(wsURL, connToken, s.events)
	tb.Cleanup(s.client.Close)

	for _, ct := range channels {
		ch := ct.Channel
		if _, dup := s.subs[ch]; dup {
			tb.Fatalf("stacktest: Subscribe: channel %q given twice", ch)
		}
		sub, err := s.client.NewSubscription(ch, centrifuge.SubscriptionConfig{
			Token:               ct.Token,
			Recoverable:         true,
			MinResubscribeDelay: minReconnectDelay,
			MaxResubscribeDelay: maxReconnectDelay,
		})
		if err != nil {
			tb.Fatalf("stacktest: new subscription to %q: %v", ch, err)
		}
		logSubscriptionEvents(sub, s.events)
		sub.OnPublication(func(e centrifuge.PublicationEvent) {
			s.push(Received{Channel: ch, Data: e.Data, Offset: e.Offset, At: time.Now()})
		})
		s.subs[ch] = sub
	}
	if err := s.client.Connect(); err != nil {
		tb.Fatalf("stacktest: connect to %s: %v", wsURL, err)
	}
	for ch, sub := range s.subs {
		if err := sub.Subscribe(); err != nil {
			tb.Fatalf("stacktest: subscribe to %q: %v", ch, err)
		}
	}
	if err := s.waitSubscribed(subscribeTimeout, true); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
	return s
}

// newClient returns a client of wsURL that connects with token,
// reconnects quickly and writes its events to events.
func newClient(wsURL, token string, events *tailBuffer) *centrifuge.Client {
	client := centrifuge.NewJsonClient(wsURL, centrifuge.Config{
		Token:             token,
		MinReconnectDelay: minReconnectDelay,
		MaxReconnectDelay: maxReconnectDelay,
	})
	client.OnConnected(func(e centrifuge.ConnectedEvent) {
		fmt.Fprintf(events, "%s connected (client %s)\n", stamp(), e.ClientID)
	})
	client.OnConnecting(func(e centrifuge.ConnectingEvent) {
		fmt.Fprintf(events, "%s connecting: %d %s\n", stamp(), e.Code, e.Reason)
	})
	client.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		fmt.Fprintf(events, "%s disconnected: %d %s\n", stamp(), e.Code, e.Reason)
	})
	client.OnError(func(e centrifuge.ErrorEvent) {
		fmt.Fprintf(events, "%s client error: %v\n", stamp(), e.Error)
	})
	return client
}

func logSubscriptionEvents(sub *centrifuge.Subscription, events *tailBuffer) {
	ch := sub.Channel
	sub.OnSubscribed(func(e centrifuge.SubscribedEvent) {
		fmt.Fprintf(events, "%s %s: subscribed (recoverable %t, was recovering %t, recovered %t)\n",
			stamp(), ch, e.Recoverable, e.WasRecovering, e.Recovered)
	})
	sub.OnSubscribing(func(e centrifuge.SubscribingEvent) {
		fmt.Fprintf(events, "%s %s: subscribing: %d %s\n", stamp(), ch, e.Code, e.Reason)
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		fmt.Fprintf(events, "%s %s: unsubscribed: %d %s\n", stamp(), ch, e.Code, e.Reason)
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) {
		fmt.Fprintf(events, "%s %s: error: %v\n", stamp(), ch, e.Error)
	})
}

func stamp() string { return time.Now().Format("15:04:05.000") }

func (s *Subscriber) push(r Received) {
	s.mu.Lock()
	s.queue = append(s.queue, r)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// pop takes the oldest queued publication, waiting until deadline.
func (s *Subscriber) pop(deadline time.Time) (Received, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			r := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return r, true
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-timer.C:
			return Received{}, false
		}
	}
}

// Next returns the oldest publication not taken yet, waiting up to
// timeout; it fails the test on timeout.
func (s *Subscriber) Next(tb testing.TB, timeout time.Duration) Received {
	tb.Helper()
	r, ok := s.pop(time.Now().Add(timeout))
	if !ok {
		tb.Fatalf("stacktest: %q received no publication within %v", s.user, timeout)
	}
	return r
}

// Collect returns the next n publications (over all channels, in arrival
// order), waiting up to timeout in total; it fails the test with the
// number that arrived on timeout.
func (s *Subscriber) Collect(tb testing.TB, n int, timeout time.Duration) []Received {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	got := make([]Received, 0, n)
	for len(got) < n {
		r, ok := s.pop(deadline)
		if !ok {
			tb.Fatalf("stacktest: %q received %d of %d publications within %v", s.user, len(got), n, timeout)
		}
		got = append(got, r)
	}
	return got
}

// Quiet waits d and fails the test as soon as a publication is queued
// (including one that arrived before the call and was not taken).
func (s *Subscriber) Quiet(tb testing.TB, d time.Duration) {
	tb.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			r, n := s.queue[0], len(s.queue)
			s.mu.Unlock()
			tb.Fatalf("stacktest: %q received %d publication(s) but expected none within %v; first on %q at offset %d: %s",
				s.user, n, d, r.Channel, r.Offset, r.Data)
		}
		s.mu.Unlock()
		select {
		case <-s.notify: // may be stale: look again
		case <-timer.C:
			return
		}
	}
}

// WaitSubscribed waits until the client is connected and every
// subscription is confirmed, e.g. after a Centrifugo restart, before
// publishing what the subscriber must see live. It fails the test when
// timeout passes or a subscription was refused. Right after Stop or Kill
// the client may not have noticed the disconnect yet; call it after Start.
func (s *Subscriber) WaitSubscribed(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	if err := s.waitSubscribed(timeout, false); err != nil {
		tb.Fatalf("stacktest: %v", err)
	}
}

func (s *Subscriber) waitSubscribed(timeout time.Duration, initial bool) error {
	deadline := time.Now().Add(timeout)
	for {
		state := s.client.State()
		pending := 0
		for ch, sub := range s.subs {
			switch sub.State() {
			case centrifuge.SubStateSubscribed:
			case centrifuge.SubStateUnsubscribed:
				return fmt.Errorf("subscription of %q to %q refused; client events:\n%s", s.user, ch, s.events)
			default:
				pending++
			}
		}
		if state == centrifuge.StateConnected && pending == 0 {
			return nil
		}
		if initial && (state == centrifuge.StateDisconnected || state == centrifuge.StateClosed) {
			return fmt.Errorf("client of %q is %s; client events:\n%s", s.user, state, s.events)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("client of %q: %d subscription(s) not confirmed within %v (client %s); client events:\n%s",
				s.user, pending, timeout, state, s.events)
		}
		time.Sleep(pollInterval)
	}
}

// WaitUnsubscribed waits until the subscription to channel has ended for
// good: Centrifugo unsubscribed it (server API unsubscribe) or closed the
// connection without reconnect (server API disconnect, invalid token). A
// subscription that is only resubscribing after a reconnect has not
// ended. It fails the test when timeout passes first.
func (s *Subscriber) WaitUnsubscribed(tb testing.TB, channel string, timeout time.Duration) {
	tb.Helper()
	sub, ok := s.subs[channel]
	if !ok {
		tb.Fatalf("stacktest: WaitUnsubscribed: %q is not subscribed to %q", s.user, channel)
	}
	deadline := time.Now().Add(timeout)
	for {
		if sub.State() == centrifuge.SubStateUnsubscribed {
			return
		}
		if st := s.client.State(); st == centrifuge.StateDisconnected || st == centrifuge.StateClosed {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stacktest: subscription of %q to %q still %s after %v; client events:\n%s",
				s.user, channel, sub.State(), timeout, s.events)
		}
		time.Sleep(pollInterval)
	}
}

// History reads the whole retained history of channel, oldest first,
// through the client (page by page: Centrifugo caps one history call at
// client.history_max_publication_limit, 300 by default). The subscriber
// must be subscribed to channel.
func (s *Subscriber) History(tb testing.TB, channel string) []Received {
	tb.Helper()
	sub, ok := s.subs[channel]
	if !ok {
		tb.Fatalf("stacktest: History: %q is not subscribed to %q", s.user, channel)
	}
	var all []Received
	var since *centrifuge.StreamPosition
	for {
		ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
		opts := []centrifuge.HistoryOption{centrifuge.WithHistoryLimit(-1)}
		if since != nil {
			opts = append(opts, centrifuge.WithHistorySince(since))
		}
		res, err := sub.History(ctx, opts...)
		cancel()
		if err != nil {
			tb.Fatalf("stacktest: history of %q: %v", channel, err)
		}
		if since != nil && res.Epoch != since.Epoch {
			tb.Fatalf("stacktest: history of %q: epoch changed from %q to %q while paging", channel, since.Epoch, res.Epoch)
		}
		for _, p := range res.Publications {
			all = append(all, Received{Channel: channel, Data: p.Data, Offset: p.Offset})
		}
		if len(res.Publications) == 0 || res.Publications[len(res.Publications)-1].Offset >= res.Offset {
			return all
		}
		since = &centrifuge.StreamPosition{Offset: all[len(all)-1].Offset, Epoch: res.Epoch}
	}
}

// SubscribeError is Centrifugo's refusal of a subscription: either an
// error reply to the subscribe command (Disconnect false; e.g. 103
// "permission denied" for a channel without token) or the end of the
// whole connection (Disconnect true; e.g. 3500 "invalid token" for a
// token of another user or channel).
type SubscribeError struct {
	Channel    string
	Code       uint32
	Reason     string
	Disconnect bool
}

func (e *SubscribeError) Error() string {
	if e.Disconnect {
		return fmt.Sprintf("subscribe to %q: disconnected: %d %s", e.Channel, e.Code, e.Reason)
	}
	return fmt.Sprintf("subscribe to %q: refused: %d %s", e.Channel, e.Code, e.Reason)
}

// TrySubscribe connects a fresh client as user (with ConnToken) and
// subscribes it to channel presenting token ("" for none). It returns nil
// when Centrifugo confirmed the subscription and a *SubscribeError when it
// refused it; it fails the test when neither happens within 10s. The
// client is closed before TrySubscribe returns.
func (c *Centrifugo) TrySubscribe(tb testing.TB, user, channel, token string) error {
	tb.Helper()
	return TrySubscribeWithToken(tb, c.WSURL, user, c.ConnToken(tb, user), channel, token)
}

// TrySubscribeWithToken is TrySubscribe against the Centrifugo at wsURL
// with a connection token issued elsewhere (e.g. by instant auth); user
// only names the client in failure messages.
func TrySubscribeWithToken(tb testing.TB, wsURL, user, connToken, channel, token string) error {
	tb.Helper()
	events := newTailBuffer(16 << 10)
	client := newClient(wsURL, connToken, events)
	defer client.Close()

	result := make(chan error, 1)
	report := func(err error) {
		select {
		case result <- err:
		default:
		}
	}
	client.OnDisconnected(func(e centrifuge.DisconnectedEvent) {
		fmt.Fprintf(events, "%s disconnected: %d %s\n", stamp(), e.Code, e.Reason)
		report(&SubscribeError{Channel: channel, Code: e.Code, Reason: e.Reason, Disconnect: true})
	})
	sub, err := client.NewSubscription(channel, centrifuge.SubscriptionConfig{Token: token})
	if err != nil {
		tb.Fatalf("stacktest: new subscription to %q: %v", channel, err)
	}
	logSubscriptionEvents(sub, events)
	sub.OnSubscribed(func(centrifuge.SubscribedEvent) {
		fmt.Fprintf(events, "%s %s: subscribed\n", stamp(), channel)
		report(nil)
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		fmt.Fprintf(events, "%s %s: unsubscribed: %d %s\n", stamp(), channel, e.Code, e.Reason)
		report(&SubscribeError{Channel: channel, Code: e.Code, Reason: e.Reason})
	})
	if err := client.Connect(); err != nil {
		tb.Fatalf("stacktest: connect to %s: %v", wsURL, err)
	}
	if err := sub.Subscribe(); err != nil {
		tb.Fatalf("stacktest: subscribe to %q: %v", channel, err)
	}
	select {
	case err := <-result:
		return err
	case <-time.After(subscribeTimeout):
		tb.Fatalf("stacktest: subscription of %q to %q neither confirmed nor refused within %v; client events:\n%s",
			user, channel, subscribeTimeout, events)
		return nil
	}
}

// Drain takes every queued publication, in arrival order, without
// waiting.
func (s *Subscriber) Drain() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queue
	s.queue = nil
	return out
}
