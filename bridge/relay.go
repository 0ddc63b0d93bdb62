package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/centrifugo"
	"github.com/instanthq/instant/internal/backoff"
)

// relayLoop sends queued items to Centrifugo, one batch in flight at a
// time, so envelopes of one channel keep their order. It returns when the
// queue is closed and drained, or when ctx ends (what it still holds is
// released).
func (b *Bridge) relayLoop(ctx context.Context) {
	pubs := make([]centrifugo.Publish, 0, b.cfg.BatchSize)
	for {
		batch := b.queue.take(b.cfg.BatchSize)
		if batch == nil {
			return
		}
		if ctx.Err() != nil {
			b.releaseAll(batch)
			continue
		}
		pubs, _ = b.send(ctx, batch, pubs, nil)
	}
}

// send relays batch until every item is settled, retrying transient
// failures with backoff; the envelopes after one that failed are sent
// again with it, so a channel's order holds (Centrifugo drops the repeats
// by their idempotency key). pubs is a reusable buffer; send returns it.
//
// With a lease, each request starts only while the lease covers it and
// must end before the lease does; send returns false, leaving the rest
// of batch unsettled, when the lease no longer allows a request or ctx
// ends. Without one, what ctx ends on is released.
func (b *Bridge) send(ctx context.Context, batch []*item, pubs []centrifugo.Publish, l *lease) ([]centrifugo.Publish, bool) {
	if len(batch) == 0 {
		return pubs, true
	}
	b.metrics.BatchSize.Observe(float64(len(batch)))
	b.metrics.InFlight.Add(float64(len(batch)))
	defer b.metrics.InFlight.Sub(float64(len(batch)))
	lastTouch := time.Now()
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 {
			b.metrics.Retries.Inc()
			if time.Since(lastTouch) > b.cfg.AckWait/3 {
				b.touch(batch)
				lastTouch = time.Now()
			}
			if backoff.Wait(ctx, attempt, b.cfg.RetryMin, b.cfg.RetryMax) != nil {
				if l != nil {
					return pubs, false
				}
				b.releaseAll(batch)
				return pubs, true
			}
		}
		reqCtx, cancel := ctx, context.CancelFunc(func() {})
		if l != nil {
			deadline, ok := l.fence(b.now())
			if !ok {
				return pubs, false
			}
			reqCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		pubs = pubs[:0]
		for _, it := range batch {
			pubs = append(pubs, it.pub)
		}
		results, err := b.relay.Publish(reqCtx, pubs)
		cancel()
		if err != nil {
			batch = b.failed(ctx, batch, err)
			continue
		}
		batch = b.settle(ctx, batch, results)
	}
	return pubs, true
}

// failed handles an error of a whole request and returns what to retry.
func (b *Bridge) failed(ctx context.Context, batch []*item, err error) []*item {
	switch {
	case ctx.Err() != nil:
		return batch
	case errors.Is(err, centrifugo.ErrUnauthorized):
		b.log.Error("Centrifugo refused the API key: nothing is relayed until CENTRIFUGO_API_KEY matches Centrifugo's http_api.key", zap.Error(err))
		return batch
	case centrifugo.Temporary(err):
		b.log.Warn("relaying to Centrifugo failed; retrying", zap.Int("batch", len(batch)), zap.Error(err))
		return batch
	}
	for i, it := range batch {
		if !b.reject(ctx, it, fmt.Errorf("%w: %v", instant.ErrCentrifugoRejected, err)) && it.batched {
			return batch[i:] // its dead letter is not stored: not settled
		}
	}
	return nil
}

// settle applies per-publication results and returns the items to retry:
// from the first one that failed transiently, or whose dead letter could
// not be stored (a batched one, acked with its batch), on.
func (b *Bridge) settle(ctx context.Context, batch []*item, results []centrifugo.Result) []*item {
	for i, it := range batch {
		switch err := results[i].Err; {
		case err == nil:
			b.relayed(it, results[i])
		case centrifugo.Temporary(err):
			b.log.Warn("Centrifugo failed a publication; retrying it and the ones after it",
				zap.Int("count", len(batch)-i), zap.Error(err))
			return batch[i:]
		default:
			if !b.reject(ctx, it, fmt.Errorf("%w: %v", instant.ErrCentrifugoRejected, err)) && it.batched {
				// Its dead letter could not be stored: it is not settled,
				// so its batch must not be acked. It is sent again with
				// the ones after it, like a transient failure.
				return batch[i:]
			}
		}
	}
	return nil
}

// touch tells JetStream that the held messages (batch and queue) are still
// being worked on, so they are not redelivered during a long outage.
func (b *Bridge) touch(batch []*item) {
	mark := func(it *item) {
		if it.msg != nil {
			_ = it.msg.InProgress()
		}
	}
	for _, it := range batch {
		mark(it)
	}
	b.queue.each(mark)
}

func (b *Bridge) releaseAll(batch []*item) {
	for _, it := range batch {
		b.release(it, b.cfg.RetryMin)
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
