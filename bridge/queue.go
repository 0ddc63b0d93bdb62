package bridge

import (
	"context"
	"sync"
)

// queue is a bounded FIFO of accepted items between intake and the relay
// loop. It is safe for concurrent use.
type queue struct {
	mu       sync.Mutex
	items    []*item
	capacity int
	closed   bool
	ready    chan struct{} // signalled when items were added or the queue closed
	room     chan struct{} // signalled when items were taken
	done     chan struct{} // closed by close
}

func newQueue(capacity int) *queue {
	return &queue{
		capacity: capacity,
		ready:    make(chan struct{}, 1),
		room:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// put appends it, waiting while the queue is full. It returns ctx.Err() if
// ctx ends first and errClosed after close.
func (q *queue) put(ctx context.Context, it *item) error {
	for {
		q.mu.Lock()
		switch {
		case q.closed:
			q.mu.Unlock()
			return errClosed
		case len(q.items) < q.capacity:
			q.items = append(q.items, it)
			more := len(q.items) < q.capacity
			q.mu.Unlock()
			signal(q.ready)
			if more {
				signal(q.room) // wake the next waiting producer, if any
			}
			return nil
		}
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-q.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitRoom waits until the queue has room and returns how much, or 0 when
// ctx ends or the queue is closed.
func (q *queue) waitRoom(ctx context.Context) int {
	for {
		q.mu.Lock()
		n, closed := q.capacity-len(q.items), q.closed
		q.mu.Unlock()
		switch {
		case closed || ctx.Err() != nil:
			return 0
		case n > 0:
			return n
		}
		select {
		case <-q.room:
		case <-q.done:
		case <-ctx.Done():
			return 0
		}
	}
}

// take removes and returns up to max items, waiting for at least one. It
// returns nil once the queue is closed and empty.
func (q *queue) take(max int) []*item {
	for {
		q.mu.Lock()
		if n := min(max, len(q.items)); n > 0 {
			batch := make([]*item, n)
			copy(batch, q.items)
			q.items = append(q.items[:0], q.items[n:]...)
			q.mu.Unlock()
			signal(q.room)
			return batch
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-q.ready:
		case <-q.done:
		}
	}
}

// close makes put fail and take return nil once the queue is drained.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// each calls f on every queued item, under the queue's lock.
func (q *queue) each(f func(*item)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.items {
		f(it)
	}
}
