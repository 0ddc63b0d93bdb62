package bridge

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// DefaultWatchInterval is how often WatchStream reads the stream's state.
const DefaultWatchInterval = 10 * time.Second

// fullRatio is the share of the stream's byte limit above which
// WatchStream warns: past the limit, producers' publications are refused.
const fullRatio = 0.9

// WatchStream reads the state of cfg's stream (cfg is completed with its
// defaults) every interval (DefaultWatchInterval when zero) until ctx
// ends, setting m's Backlog (the envelopes not yet acked: the partitions'
// consumers' pending and ack pending; acked ones may stay stored until
// their partition's runner purges them), StreamBytes and StreamMaxBytes,
// and logs a warning when the stream holds more than 90% of its byte
// limit (and once when it is back below). A failed read is logged at
// debug level and retried at the next tick. It needs the stream info and
// consumer list APIs ($JS.API.STREAM.INFO.<stream>,
// $JS.API.CONSUMER.LIST.<stream>).
func WatchStream(ctx context.Context, js jetstream.JetStream, cfg Config, interval time.Duration, m *Metrics, log *zap.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.setDefaults()
	stream := cfg.Stream
	log = log.With(zap.String("stream", stream))
	full := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, max(interval, 5*time.Second))
		s, err := js.Stream(rctx, stream)
		var backlog uint64
		if err == nil {
			backlog, err = unacked(rctx, s, cfg)
		}
		cancel()
		if err == nil {
			info := s.CachedInfo()
			m.Backlog.Set(float64(backlog))
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

// unacked returns how many envelopes of stream s wait to be acked, over
// every partition (see partitionPending), or, on a stream not yet split
// into partitions (made by an older version, work-queue retention), the
// messages it stores.
func unacked(ctx context.Context, s jetstream.Stream, cfg Config) (uint64, error) {
	lay := newLayout(cfg)
	if lay.n = lay.partitionsOf(s.CachedInfo().Config); lay.n == 0 {
		return s.CachedInfo().State.Msgs, nil
	}
	pending, err := partitionPending(ctx, s, lay)
	var sum uint64
	for _, n := range pending {
		sum += n
	}
	return sum, err
}

// partitionPending returns the envelopes not yet acked of each partition:
// its consumers' pending and ack pending, or, for a partition without a
// consumer (no worker took it yet), the messages it stores.
func partitionPending(ctx context.Context, s jetstream.Stream, lay layout) (map[int]uint64, error) {
	pending := map[int]uint64{}
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		for p := range lay.count() {
			if strings.HasPrefix(info.Name, lay.consumerPrefix(p)) {
				pending[p] += info.NumPending + uint64(info.NumAckPending)
			}
		}
	}
	if err := list.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, err
	}
	for p := range lay.count() {
		if _, ok := pending[p]; ok {
			continue
		}
		for _, f := range lay.filters(p) {
			info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
			if err != nil {
				return nil, err
			}
			for _, n := range info.State.Subjects {
				pending[p] += n
			}
		}
	}
	return pending, nil
}
