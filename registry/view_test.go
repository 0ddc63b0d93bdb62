package registry

import (
	"fmt"
	"testing"

	"github.com/instanthq/instant"
)

func TestStatic(t *testing.T) {
	in := []instant.Channel{
		{Name: "public", Level: instant.LevelPublic, Active: true},
		{Name: "$team", Level: instant.LevelGroups, Active: false, Groups: []string{"team"}},
		{Name: "$users", Level: instant.LevelUsers, Active: true},
	}
	v := Static(in)
	in[1].Groups[0] = "changed" // Static copies its input
	in[1].Active = true

	tests := []struct {
		name   string
		want   instant.Channel
		wantOK bool
	}{
		{"public", in[0], true},
		{"$team", instant.Channel{Name: "$team", Level: instant.LevelGroups, Groups: []string{"team"}}, true},
		{"$users", in[2], true},
		{"users", instant.Channel{}, false},
		{"", instant.Channel{}, false},
	}
	for _, tt := range tests {
		got, ok := v.Lookup(tt.name)
		if ok != tt.wantOK || !sameChannel(&got, &tt.want) {
			t.Errorf("Lookup(%q) = %+v, %t; want %+v, %t", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}

	all := v.All()
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	if got, want := fmt.Sprint(names), "[$team $users public]"; got != want {
		t.Errorf("All names = %s, want %s", got, want)
	}
	all[0].Groups[0] = "changed" // All returns copies
	if c, _ := v.Lookup("$team"); c.Groups[0] != "team" {
		t.Errorf("modifying All's result changed the View: groups %v", c.Groups)
	}

	select {
	case c, ok := <-v.Changes():
		if ok {
			t.Errorf("Changes of a static View delivered %+v, want a closed channel", c)
		}
	default:
		t.Error("Changes of a static View is not closed")
	}
}

func TestStaticDuplicateLastWins(t *testing.T) {
	v := Static([]instant.Channel{
		{Name: "public", Level: instant.LevelPublic, Active: true},
		{Name: "public", Level: instant.LevelPublic, Active: false},
	})
	if c, ok := v.Lookup("public"); !ok || c.Active {
		t.Errorf("Lookup = %+v, %t; want the last entry (inactive)", c, ok)
	}
	if n := len(v.All()); n != 1 {
		t.Errorf("len(All) = %d, want 1", n)
	}
}

func BenchmarkViewLookup(b *testing.B) {
	chs := make([]instant.Channel, 1000)
	for i := range chs {
		chs[i] = instant.Channel{Name: fmt.Sprintf("chan%d", i), Level: instant.LevelPublic, Active: true}
	}
	v := Static(chs)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := v.Lookup(chs[i%len(chs)].Name); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
}

// Change is the change a registry View delivers.
type Change = instant.Change[instant.Channel]

func fmtChanges(cs []Change) string {
	s := "["
	for _, c := range cs {
		s += fmt.Sprintf("{%s %v -> %v}", c.Name, c.Old, c.New)
	}
	return s + "]"
}
