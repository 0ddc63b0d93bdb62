package auth

import (
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how often a limiter drops the buckets that are full again.
const sweepEvery = time.Minute

// maxKeyLength bounds the length of a key kept by a limiter.
const maxKeyLength = 256

// limiter is one token bucket per key (a client address or a user name),
// forgotten once full again. It is safe for concurrent use; times come
// from the caller, so that tests control the clock.
type limiter struct {
	limit Limit

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

func newLimiter(l Limit) *limiter {
	return &limiter{limit: l, buckets: make(map[string]*rate.Limiter)}
}

func (l *limiter) bucket(key string, now time.Time) *rate.Limiter {
	if len(key) > maxKeyLength {
		key = key[:maxKeyLength]
	}
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.lastSweep = now
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.limit.Burst) {
				delete(l.buckets, k)
			}
		}
	}
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Every(l.limit.Every), l.limit.Burst)
		l.buckets[key] = b
	}
	return b
}

// take uses one attempt of key at now. It returns 0 when the attempt is
// allowed, else how long to wait before the next one is.
func (l *limiter) take(key string, now time.Time) time.Duration {
	if l.limit.off() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// wait returns 0 when key has an attempt left at now, without using it,
// else how long until it has one.
func (l *limiter) wait(key string, now time.Time) time.Duration {
	if l.limit.off() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tokens := l.bucket(key, now).TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(l.limit.Every)))
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
	if h := s.cfg.ClientIPHeader; h != "" {
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
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
