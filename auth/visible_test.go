package auth_test

import (
	"fmt"
	"testing"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
)

// kinds are the identities of the visibility table, in its column order.
var kinds = []struct {
	name string
	id   auth.Identity
}{
	{"plain", auth.Identity{Username: "plain"}},
	{"member", auth.Identity{Username: "member", Groups: []string{"group0", "group1"}}},
	{"staff", auth.Identity{Username: "staff", Staff: true}},
	{"superuser", auth.Identity{Username: "superuser", Superuser: true}},
	{"anonymous", auth.Anonymous},
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
					if got := auth.Allowed(k.id, ch); got != want {
						t.Errorf("Allowed = %t, want %t", got, want)
					}
					vis := auth.Visible(k.id, []instant.Channel{ch})
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
		id   auth.Identity
		want []string
	}{
		{auth.Anonymous, []string{"public"}},
		{auth.Identity{Username: "u"}, []string{"public", "$users"}},
		{auth.Identity{Username: "u", Staff: true, Superuser: true, Groups: []string{"group1"}}, []string{"public", "$staff", "$users", "$group1"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range auth.Visible(tt.id, chs) {
			got = append(got, c.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Visible(%+v) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
