package instant

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxChannelLength is the longest channel name accepted, Centrifugo's own
// default limit.
const MaxChannelLength = 255

// Channel is an entry of the channel registry.
type Channel struct {
	// Name is the Centrifugo channel name. Non-public names carry the
	// private prefix "$" (see ChannelName).
	Name string `json:"name"`
	// Level says who may subscribe.
	Level Level `json:"level"`
	// Active channels accept publications; inactive ones reject them.
	Active bool `json:"active"`
	// Groups lists the user groups that may see the channel whatever its
	// level.
	Groups []string `json:"groups,omitempty"`
}

// ChannelName applies the naming rule of django-instant: a non-public
// channel's name starts with "$", after its namespace if it has one
// ("chan" → "$chan", "ns:chan" → "ns:$chan"). Public names are returned
// unchanged, and names that already follow the rule too.
func ChannelName(name string, level Level) string {
	if level == LevelPublic {
		return name
	}
	ns, base, found := strings.Cut(name, ":")
	if !found {
		base, ns = ns, ""
	}
	if strings.HasPrefix(base, "$") {
		return name
	}
	if !found {
		return "$" + base
	}
	return ns + ":$" + base
}

// ValidChannelName reports why name cannot be a channel name, or nil. A
// name is 1 to MaxChannelLength bytes of UTF-8 without '.', '*', '>', white
// space or control characters, so that it can be the last token of a NATS
// subject.
func ValidChannelName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadChannel)
	case len(name) > MaxChannelLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadChannel, MaxChannelLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrBadChannel)
	}
	for _, r := range name {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w %q: contains %q", ErrBadChannel, name, r)
		}
	}
	return nil
}

// NewChannel returns an active channel named by the naming rule, after
// checking the name, the level and the group names.
func NewChannel(name string, level Level, groups []string) (Channel, error) {
	if _, err := ParseLevel(string(level)); err != nil {
		return Channel{}, err
	}
	if err := ValidChannelName(name); err != nil {
		return Channel{}, err
	}
	c := Channel{Name: ChannelName(name, level), Level: level, Active: true, Groups: groups}
	return c, c.Validate()
}

// Validate reports whether c is a well-formed registry entry.
func (c Channel) Validate() error {
	if err := ValidChannelName(c.Name); err != nil {
		return err
	}
	if _, err := ParseLevel(string(c.Level)); err != nil {
		return err
	}
	if c.Level == LevelPublic && isPrivate(c.Name) {
		return fmt.Errorf("%w %q: a public channel cannot use the private prefix $", ErrBadChannel, c.Name)
	}
	if base := c.Name[strings.Index(c.Name, ":")+1:]; base == "" || base == "$" {
		return fmt.Errorf("%w %q: no name after the namespace or prefix", ErrBadChannel, c.Name)
	}
	if c.Level != LevelPublic && !isPrivate(c.Name) {
		return fmt.Errorf("%w %q: a %s channel must be named %q", ErrBadChannel, c.Name, c.Level, ChannelName(c.Name, c.Level))
	}
	for _, g := range c.Groups {
		if err := ValidGroup(g); err != nil {
			return fmt.Errorf("%w %q: %w", ErrBadChannel, c.Name, err)
		}
	}
	return nil
}

func isPrivate(name string) bool {
	if _, base, ok := strings.Cut(name, ":"); ok {
		return strings.HasPrefix(base, "$")
	}
	return strings.HasPrefix(name, "$")
}

// Admit checks an envelope against its channel's registry entry: it returns
// ErrInactiveChannel or ErrLevelMismatch, or nil when c accepts e.
func (c Channel) Admit(e *Envelope) error {
	if !c.Active {
		return fmt.Errorf("%w: %q", ErrInactiveChannel, c.Name)
	}
	if e.Level != "" && e.Level != c.Level {
		return fmt.Errorf("%w: envelope says %s, channel %q is %s", ErrLevelMismatch, e.Level, c.Name, c.Level)
	}
	return nil
}

// LiteralSubject reports whether s is a literal NATS subject that can
// prefix a channel: non-empty tokens separated by single dots, without
// wildcards or white space.
func LiteralSubject(s string) bool {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) })
}
