package auth

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// sweepEvery is how often the login limiter drops the buckets that are
// full again.
const sweepEvery = time.Minute

// maxKeyLength bounds the length of a key kept by the login limiter.
const maxKeyLength = 256

// Keys of a rate-limit refusal, the label of Metrics.RateLimited.
const (
	limitAddress         = "address"
	limitAddressUsername = "address_username"
	limitUsername        = "username"
)

// bucket is a token bucket: tokens at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// buckets are the token buckets of one Limit, one per key; a key without
// a bucket has a full one.
type buckets struct {
	limit Limit
	m     map[string]*bucket
}

func newBuckets(l Limit) buckets { return buckets{limit: l, m: make(map[string]*bucket)} }

// level returns the tokens of key at now.
func (b buckets) level(key string, now time.Time) float64 {
	if b.limit.off() {
		return math.Inf(1)
	}
	k, ok := b.m[key]
	if !ok {
		return float64(b.limit.Burst)
	}
	refill := float64(now.Sub(k.at)) / float64(b.limit.Every)
	return min(float64(b.limit.Burst), k.tokens+max(0, refill))
}

// full reports whether key has used nothing that has not come back.
func (b buckets) full(key string, now time.Time) bool {
	return b.level(key, now) >= float64(b.limit.Burst)
}

// add adds n (negative: takes) tokens to key at now, forgetting a bucket
// full again.
func (b buckets) add(key string, n float64, now time.Time) {
	if b.limit.off() {
		return
	}
	t := b.level(key, now) + n
	if t >= float64(b.limit.Burst) {
		delete(b.m, key)
		return
	}
	b.m[key] = &bucket{tokens: t, at: now}
}

// wait returns how long until key has a token, or 0 when it has one.
func (b buckets) wait(key string, now time.Time) time.Duration {
	t := b.level(key, now)
	if t >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - t) * float64(b.limit.Every)))
}

// sweep forgets the buckets full again at now.
func (b buckets) sweep(now time.Time) {
	for k := range b.m {
		if b.full(k, now) {
			delete(b.m, k)
		}
	}
}

// loginLimiter decides which login attempts get their password checked.
// It charges an attempt before the check, under one lock, so parallel
// attempts cannot all pass a check made before any of them is counted;
// a successful login gets its failure charges back (see admission). It is
// safe for concurrent use; times come from the caller, so that tests
// control the clock.
//
// The rule, with the Config's three limits:
//   - per client address (AddressLimit), every attempt counts;
//   - per client address and user name (AddressUsernameLimit), failed
//     attempts count;
//   - per user name (UsernameLimit), failed attempts from any address
//     count, but an address that has no failure of its own for that
//     name (its AddressUsernameLimit bucket is full) is let through
//     even when the name's budget is spent: nobody can lock an account
//     from elsewhere. The price: while a name is limited, each address
//     may still try it once per AddressUsernameLimit.Every.
type loginLimiter struct {
	mu        sync.Mutex
	address   buckets
	pair      buckets
	name      buckets
	lastSweep time.Time
}

func newLoginLimiter(c Config) *loginLimiter {
	return &loginLimiter{
		address: newBuckets(c.AddressLimit),
		pair:    newBuckets(c.AddressUsernameLimit),
		name:    newBuckets(c.UsernameLimit),
	}
}

// admission is an attempt let through by loginLimiter.admit.
type admission struct {
	l        *loginLimiter
	pair     string
	name     string
	tookName bool
}

// admit charges a login attempt of name from address at now and returns
// its admission, or the key of the limit that refuses it ("" when
// allowed) and how long until it would allow one.
func (l *loginLimiter) admit(address, name string, now time.Time) (admission, string, time.Duration) {
	address, name = truncate(address), truncate(name)
	pair := address + "\x00" + name
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.lastSweep = now
		l.address.sweep(now)
		l.pair.sweep(now)
		l.name.sweep(now)
	}
	if d := l.address.wait(address, now); d > 0 {
		return admission{}, limitAddress, d
	}
	l.address.add(address, -1, now)
	if d := l.pair.wait(pair, now); d > 0 {
		return admission{}, limitAddressUsername, d
	}
	a := admission{l: l, pair: pair, name: name}
	switch d := l.name.wait(name, now); {
	case d == 0:
		l.name.add(name, -1, now)
		a.tookName = true
	case l.pair.limit.off() || !l.pair.full(pair, now):
		return admission{}, limitUsername, d
	}
	l.pair.add(pair, -1, now)
	return a, "", 0
}

// succeeded gives back the failure charges of an attempt whose password
// was right.
func (a admission) succeeded(now time.Time) {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.l.pair.add(a.pair, 1, now)
	if a.tookName {
		a.l.name.add(a.name, 1, now)
	}
}

func truncate(key string) string {
	if len(key) > maxKeyLength {
		return key[:maxKeyLength]
	}
	return key
}

// retryAfter is the value of a Retry-After header for d: whole seconds,
// at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// clientAddress returns the address login attempts are counted by: the
// header the Config names (the last address of a list), else the
// connection's IP.
func (s *Server) clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if h := s.cfg.ClientIPHeader; h != "" && s.trustedProxy(host) {
		if v := r.Header.Values(h); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a := strings.TrimSpace(last); a != "" {
				return a
			}
		}
	}
	return host
}

// trustedProxy reports whether the peer at host may set ClientIPHeader:
// every peer when TrustedProxies is empty.
func (s *Server) trustedProxy(host string) bool {
	if len(s.cfg.TrustedProxies) == 0 {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
