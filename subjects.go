package instant

// The names on NATS that producers, the bridge and the auth module's
// dead-letter view share. The subjects are prefixes: a channel's
// envelopes go on the prefix or on prefix.<channel>. Each is the default
// of its setting (INSTANT_SUBJECT, INSTANT_REQUEST_SUBJECT,
// INSTANT_DEAD_SUBJECT); the producer module, which imports nothing of
// this one, carries its own copy of the first two, and a test here checks
// that they agree.
const (
	DefaultSubject        = "instant.publish"
	DefaultRequestSubject = "instant.request"
	DefaultDeadSubject    = "instant.dead"
	// DefaultStream captures the publish subjects in JetStream mode.
	DefaultStream = "INSTANT"
	// DefaultDeadStream keeps the dead letters in JetStream mode.
	DefaultDeadStream = "INSTANT_DEAD"
)

// Header names of a dead letter: the rejection Code, a readable reason
// and the subject the envelope came on.
const (
	HeaderError        = "Instant-Error"
	HeaderErrorMessage = "Instant-Error-Message"
	HeaderSubject      = "Instant-Subject"
)
