package instant_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/instanthq/instant"
)

// kinds are the identities of the visibility table, in its column order.
var kinds = []struct {
	name string
	id   instant.Identity
}{
	{"plain", instant.Identity{Username: "plain"}},
	{"member", instant.Identity{Username: "member", Groups: []string{"group0", "group1"}}},
	{"staff", instant.Identity{Username: "staff", Staff: true}},
	{"superuser", instant.Identity{Username: "superuser", Superuser: true}},
	{"anonymous", instant.Anonymous},
}

func TestAllowed(t *testing.T) {
	// want has one letter per kind: Y sees the channel, n does not.
	tests := []struct {
		level  instant.Level
		groups []string
		want   string
	}{
		{instant.LevelPublic, nil, "YYYYY"},
		{instant.LevelUsers, nil, "YYYYn"},
		{instant.LevelGroups, nil, "nnnnn"},
		{instant.LevelStaff, nil, "nnYnn"},
		{instant.LevelSuperuser, nil, "nnnYn"},
		// A channel listing one of the member's groups is theirs whatever
		// its level (django-instant's rule).
		{instant.LevelPublic, []string{"group1"}, "YYYYY"},
		{instant.LevelUsers, []string{"group1"}, "YYYYn"},
		{instant.LevelGroups, []string{"group1"}, "nYnnn"},
		{instant.LevelStaff, []string{"group1"}, "nYYnn"},
		{instant.LevelSuperuser, []string{"group1"}, "nYnYn"},
		{instant.LevelGroups, []string{"other", "group1"}, "nYnnn"},
		{instant.LevelGroups, []string{"other"}, "nnnnn"},
	}
	for _, tt := range tests {
		for _, active := range []bool{true, false} {
			ch := instant.Channel{Name: instant.ChannelName("chan", tt.level), Level: tt.level, Groups: tt.groups, Active: active}
			for i, k := range kinds {
				want := tt.want[i] == 'Y' && active
				t.Run(fmt.Sprintf("%s/%v/active=%t/%s", tt.level, tt.groups, active, k.name), func(t *testing.T) {
					if got := instant.Allowed(k.id, ch); got != want {
						t.Errorf("Allowed = %t, want %t", got, want)
					}
					vis := instant.Visible(k.id, []instant.Channel{ch})
					if got := len(vis) == 1; got != want {
						t.Errorf("Visible = %v, want visible %t", vis, want)
					}
				})
			}
		}
	}
}

func TestVisibleKeepsOrder(t *testing.T) {
	chs := []instant.Channel{
		{Name: "public", Level: instant.LevelPublic, Active: true},
		{Name: "$staff", Level: instant.LevelStaff, Active: true},
		{Name: "$users", Level: instant.LevelUsers, Active: true},
		{Name: "$off", Level: instant.LevelUsers},
		{Name: "$group1", Level: instant.LevelGroups, Groups: []string{"group1"}, Active: true},
	}
	tests := []struct {
		id   instant.Identity
		want []string
	}{
		{instant.Anonymous, []string{"public"}},
		{instant.Identity{Username: "u"}, []string{"public", "$users"}},
		{instant.Identity{Username: "u", Staff: true, Superuser: true, Groups: []string{"group1"}}, []string{"public", "$staff", "$users", "$group1"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range instant.Visible(tt.id, chs) {
			got = append(got, c.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Visible(%+v) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestGroupRule checks the one group-name rule that users, identity JWTs
// and channels share.
func TestGroupRule(t *testing.T) {
	for _, g := range []string{"", " ", "a,b", "a\nb", "a\rb", "a\xffb"} {
		if err := instant.ValidGroup(g); !errors.Is(err, instant.ErrBadGroup) {
			t.Errorf("ValidGroup(%q) = %v, want %v", g, err, instant.ErrBadGroup)
		}
		if _, err := instant.NormalizeGroups([]string{"ok", g}); !errors.Is(err, instant.ErrBadGroup) {
			t.Errorf("NormalizeGroups(%q) = %v, want %v", g, err, instant.ErrBadGroup)
		}
		c := instant.Channel{Name: "$x", Level: instant.LevelGroups, Active: true, Groups: []string{g}}
		if err := c.Validate(); !errors.Is(err, instant.ErrBadChannel) || !errors.Is(err, instant.ErrBadGroup) {
			t.Errorf("Channel.Validate with group %q = %v, want %v and %v", g, err, instant.ErrBadChannel, instant.ErrBadGroup)
		}
	}
	got, err := instant.NormalizeGroups([]string{"b", "a", "b", "é"})
	if err != nil || !slices.Equal(got, []string{"a", "b", "é"}) {
		t.Errorf("NormalizeGroups = %q, %v; want [a b é]", got, err)
	}
}

func TestValidUsername(t *testing.T) {
	for _, name := range []string{"", "a b", "a\tb", "a\x00", "a\u00a0b", "a\xff", strings.Repeat("é", instant.MaxUsernameLength+1)} {
		if err := instant.ValidUsername(name); !errors.Is(err, instant.ErrBadUsername) {
			t.Errorf("ValidUsername(%q) = %v, want %v", name, err, instant.ErrBadUsername)
		}
	}
	for _, name := range []string{"a", "$alice.x", strings.Repeat("é", instant.MaxUsernameLength)} {
		if err := instant.ValidUsername(name); err != nil {
			t.Errorf("ValidUsername(%q) = %v, want nil", name, err)
		}
	}
}
