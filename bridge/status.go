package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is the partitioning as the lease bucket and the stream show it.
type Status struct {
	Stream     string            `json:"stream"`
	Partitions int               `json:"partitions"` // by channel; the bare partition comes on top
	Workers    []WorkerStatus    `json:"workers"`
	Assignment []PartitionStatus `json:"assignment"`
}

// WorkerStatus is one live worker.
type WorkerStatus struct {
	MemberInfo
	Partitions []string `json:"partitions"`
}

// PartitionStatus is one partition: who holds its lease ("" for nobody)
// and how many of its envelopes wait to be acked (its consumer's pending
// and ack pending, or all it stores while it has no consumer).
type PartitionStatus struct {
	Partition string `json:"partition"`
	Owner     string `json:"owner"`
	Pending   uint64 `json:"pending"`
}

// ReadStatus reads the current partitioning of cfg's stream (JetStream
// mode). cfg is completed with its defaults.
func ReadStatus(ctx context.Context, js jetstream.JetStream, cfg Config) (*Status, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("bridge: stream %s: %w", cfg.Stream, err)
	}
	lay := newLayout(cfg)
	lay.n = lay.partitionsOf(stream.CachedInfo().Config)
	if lay.n == 0 {
		return nil, fmt.Errorf("bridge: stream %s is not split into partitions (no worker of this version has started on it)", cfg.Stream)
	}
	st := &Status{Stream: cfg.Stream, Partitions: lay.n}
	kv, err := js.KeyValue(ctx, cfg.LeaseBucket)
	if err != nil {
		return nil, fmt.Errorf("bridge: lease bucket %s: %w", cfg.LeaseBucket, err)
	}
	store := kvStore{kv}
	owners := map[string]string{}
	keys, err := store.keys(ctx, partitionPrefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		var o ownerInfo
		if v, err := store.get(ctx, k); err == nil && json.Unmarshal(v, &o) == nil {
			owners[strings.TrimPrefix(k, partitionPrefix)] = o.Owner
		}
	}
	pending, err := partitionPending(ctx, stream, lay)
	if err != nil {
		return nil, err
	}
	byWorker := map[string][]string{}
	for p := range lay.count() {
		name := lay.name(p)
		st.Assignment = append(st.Assignment, PartitionStatus{Partition: name, Owner: owners[name], Pending: pending[p]})
		if o := owners[name]; o != "" {
			byWorker[o] = append(byWorker[o], name)
		}
	}
	keys, err = store.keys(ctx, memberPrefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		var m MemberInfo
		v, err := store.get(ctx, k)
		if err != nil || json.Unmarshal(v, &m) != nil {
			continue
		}
		st.Workers = append(st.Workers, WorkerStatus{MemberInfo: m, Partitions: byWorker[m.ID]})
	}
	slices.SortFunc(st.Workers, func(a, b WorkerStatus) int { return strings.Compare(a.ID, b.ID) })
	return st, nil
}
