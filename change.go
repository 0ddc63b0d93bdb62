package instant

// Change is one change of a live view of a store (the channel registry,
// the user store), as its readers see it. Name is the entry's name (a
// channel name or a user name); Old is the entry before the change and New
// after it. A nil Old means the entry was added; a nil New that it was
// removed: deleted, purged, or replaced by a value that cannot be decoded,
// so that a broken entry never keeps an old value alive. Old and New are
// never both nil, and never equal.
//
// A reader that lags behind sees the net effect of what it missed: the
// changes waiting for it are merged per name (Old of the first, New of the
// last), and a change that cancels out is dropped.
type Change[T any] struct {
	Name string
	Old  *T
	New  *T
}
