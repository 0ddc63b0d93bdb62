package bridge

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// DefaultWatchInterval is how often WatchStream reads the stream's state.
const DefaultWatchInterval = 10 * time.Second

// fullRatio is the share of the stream's byte limit above which
// WatchStream warns: past the limit, producers' publications are refused.
const fullRatio = 0.9

// WatchStream reads the state of the stream named stream every interval
// (DefaultWatchInterval when zero) until ctx ends, setting m's Backlog,
// StreamBytes and StreamMaxBytes, and logs a warning when the stream
// holds more than 90% of its byte limit (and once when it is back below).
// A failed read is logged at debug level and retried at the next tick.
// It needs only the stream info API ($JS.API.STREAM.INFO.<stream>).
func WatchStream(ctx context.Context, js jetstream.JetStream, stream string, interval time.Duration, m *Metrics, log *zap.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("stream", stream))
	full := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		s, err := js.Stream(rctx, stream)
		cancel()
		if err == nil {
			info := s.CachedInfo()
			m.Backlog.Set(float64(info.State.Msgs))
			m.StreamBytes.Set(float64(info.State.Bytes))
			m.StreamMaxBytes.Set(float64(info.Config.MaxBytes))
			max := info.Config.MaxBytes
			nowFull := max > 0 && float64(info.State.Bytes) >= fullRatio*float64(max)
			switch {
			case nowFull && !full:
				log.Warn("the stream is nearly full: at its byte limit, producers' publications are refused until the bridge catches up",
					zap.Uint64("bytes", info.State.Bytes), zap.Int64("max_bytes", max), zap.Uint64("messages", info.State.Msgs))
			case !nowFull && full:
				log.Info("the stream is below 90% of its byte limit again", zap.Uint64("bytes", info.State.Bytes))
			}
			full = nowFull
		} else if ctx.Err() == nil {
			log.Debug("reading the stream's state", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
