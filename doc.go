// Package instant holds the domain of instant: channels and their access
// levels, the publish envelope producers put on NATS, the publication
// browsers receive, and the rejection codes. It imports nothing heavy;
// the bridge, the registry and the auth module build on it.
package instant
