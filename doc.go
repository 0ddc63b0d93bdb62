// Package instant holds the domain of instant: channels and their access
// levels, the access model (Identity, User, who may see which channel:
// Allowed and Visible; the user-name and group-name rules), the publish
// envelope producers put on NATS, the publication browsers receive, the
// rejection codes and the errors every package shares, and Change, what a
// live view of a store reports. It imports only the standard library; the
// stores (registry, users), the bridge and the auth module build on it,
// and each rule here is the only copy of it.
package instant
