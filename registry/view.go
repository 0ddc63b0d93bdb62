package registry

import (
	"slices"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/kvview"
)

// View is an in-memory, read-only copy of the channel registry: either
// kept up to date by Store.Watch or fixed by Static. Its contract is
// kvview.View's: Lookup is cheap enough for every envelope on the hot
// path, Changes tells readers what changes (see instant.Change).
type View = kvview.View[instant.Channel]

// codec reads the registry's bucket.
var codec = kvview.Codec[instant.Channel]{
	Decode: decodeEntry,
	Equal:  channelEqual,
	Copy: func(c instant.Channel) instant.Channel {
		c.Groups = slices.Clone(c.Groups)
		return c
	},
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
	return kvview.Fixed(m, codec)
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
