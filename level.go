package instant

import "fmt"

// Level is the access level of a channel: who may subscribe to it.
type Level string

// The levels, from the widest audience to the narrowest.
const (
	LevelPublic    Level = "public"
	LevelUsers     Level = "users"
	LevelGroups    Level = "groups"
	LevelStaff     Level = "staff"
	LevelSuperuser Level = "superuser"
)

// Levels lists every valid level, widest audience first.
var Levels = []Level{LevelPublic, LevelUsers, LevelGroups, LevelStaff, LevelSuperuser}

// ParseLevel returns the Level named s, or ErrBadLevel.
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels {
		if string(l) == s {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of public, users, groups, staff, superuser)", ErrBadLevel, s)
}

// UnmarshalText implements encoding.TextUnmarshaler so that JSON and YAML
// documents can only hold valid levels.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
