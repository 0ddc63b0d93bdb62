package registry

import (
	"slices"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/kvview"
)

// View is an in-memory, read-only copy of the channel registry: either
// kept up to date by Store.Watch or fixed by Static. It is safe for
// concurrent use; Lookup is a map read behind an atomic pointer load,
// cheap enough for every envelope on the hot path.
//
// Channels returned by a View share their Groups slice with it: callers
// must not modify it.
type View struct {
	v *kvview.View[instant.Channel]
}

// Change is one change of a View seen by a Changes reader. Old is the
// channel before the change and New after it; a nil Old means the channel
// was added, a nil New that it was removed (deleted, purged, or replaced by
// an entry that cannot be decoded).
type Change struct {
	Name string
	Old  *instant.Channel
	New  *instant.Channel
}

// Static returns a View that always holds chs, for a registry read from a
// file (see LoadFile) where NATS has no JetStream. chs should be valid and
// free of duplicates, as LoadFile returns them; on a duplicate name the
// last entry wins. Static copies chs. Its Changes channel is closed at
// once, since it never changes.
func Static(chs []instant.Channel) *View {
	m := make(map[string]instant.Channel, len(chs))
	for _, c := range chs {
		c.Groups = slices.Clip(slices.Clone(c.Groups))
		m[c.Name] = c
	}
	return &View{kvview.Fixed(m, channelEqual)}
}

// Lookup returns the channel named name and whether it is in the registry,
// whatever its Active flag.
func (v *View) Lookup(name string) (instant.Channel, bool) {
	return v.v.Lookup(name)
}

// All returns every channel of the registry, sorted by name. The slice and
// the Groups slices are fresh copies the caller may modify.
func (v *View) All() []instant.Channel {
	chs := v.v.All()
	for i := range chs {
		chs[i].Groups = slices.Clone(chs[i].Groups)
	}
	return chs
}

// Changes returns a new channel that receives the changes the View sees
// from now on, in order per channel name. Each call returns a new,
// independent channel.
//
// A slow reader never blocks the View nor other readers: while a reader
// lags, the changes waiting for it are merged per channel name (Old of the
// first, New of the last; a change that cancels out is dropped), so at
// most one change per name waits and the reader still learns the net
// effect of everything that happened. To never miss a change, call
// Changes before reading the initial state with All.
//
// The channel is closed when the View stops following the registry: when
// the context given to Store.Watch ends or the NATS connection closes.
// Changes that are still waiting then are dropped. For a View that has
// already stopped, and for a Static View, the channel is closed at once.
func (v *View) Changes() <-chan Change {
	return kvview.Subscribe(v.v, func(c kvview.Change[instant.Channel]) Change {
		return Change{Name: c.Name, Old: c.Old, New: c.New}
	})
}

// sameChannel reports whether a and b (nil: absent) are the same entry.
func sameChannel(a, b *instant.Channel) bool {
	if a == nil || b == nil {
		return a == b
	}
	return channelEqual(*a, *b)
}

// channelEqual reports whether a and b are the same entry.
func channelEqual(a, b instant.Channel) bool {
	return a.Name == b.Name && a.Level == b.Level && a.Active == b.Active && slices.Equal(a.Groups, b.Groups)
}
