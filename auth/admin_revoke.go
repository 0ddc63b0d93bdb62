package auth

import (
	"context"
	"sync"
)

// revocationWaiters lets an admin change learn how many revocations Run
// made because of it: the change registers before it writes, Run reports
// after it revoked.
type revocationWaiters struct {
	mu      sync.Mutex
	waiting map[string][]chan int // by key (userKey, channelKey)
}

func userKey(name string) string    { return "user\x00" + name }
func channelKey(name string) string { return "channel\x00" + name }

// revocationWait is one registered wait.
type revocationWait struct {
	s   *Server
	key string
	ch  chan int
}

// awaitRevocations registers a wait for the revocations of the next
// change of key. Without a Revoker nothing is revoked and the wait ends
// at once.
func (s *Server) awaitRevocations(key string) revocationWait {
	w := revocationWait{s: s, key: key, ch: make(chan int, 1)}
	if s.revoker == nil {
		return w
	}
	s.waiters.mu.Lock()
	defer s.waiters.mu.Unlock()
	if s.waiters.waiting == nil {
		s.waiters.waiting = make(map[string][]chan int)
	}
	s.waiters.waiting[key] = append(s.waiters.waiting[key], w.ch)
	return w
}

// result returns the number of revocations made for the change, or nil
// when there was none to wait for (no Revoker, or expect false) or Run did
// not report within adminWait.
func (w revocationWait) result(ctx context.Context, expect bool) *int {
	defer w.cancel()
	if w.s.revoker == nil || !expect {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, adminWait)
	defer cancel()
	select {
	case n := <-w.ch:
		return &n
	case <-ctx.Done():
		return nil
	}
}

// cancel drops the wait.
func (w revocationWait) cancel() {
	if w.s.revoker == nil {
		return
	}
	ws := &w.s.waiters
	ws.mu.Lock()
	defer ws.mu.Unlock()
	list := ws.waiting[w.key]
	for i, ch := range list {
		if ch == w.ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ws.waiting, w.key)
	} else {
		ws.waiting[w.key] = list
	}
}

// revoked reports that n revocations were made for a change of key to
// the waits registered before it, and ends them.
func (s *Server) revoked(key string, n int) {
	s.waiters.mu.Lock()
	list := s.waiters.waiting[key]
	delete(s.waiters.waiting, key)
	s.waiters.mu.Unlock()
	for _, ch := range list {
		ch <- n // buffered, one report per wait
	}
}
