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

// TestSubscriberMerge checks how changes waiting for a slow reader merge.
func TestSubscriberMerge(t *testing.T) {
	a1 := &instant.Channel{Name: "a", Level: instant.LevelPublic, Active: true}
	a2 := &instant.Channel{Name: "a", Level: instant.LevelPublic, Active: false}
	a3 := &instant.Channel{Name: "a", Level: instant.LevelPublic, Active: true, Groups: []string{"g"}}
	b1 := &instant.Channel{Name: "b", Level: instant.LevelPublic, Active: true}
	c1 := &instant.Channel{Name: "c", Level: instant.LevelPublic, Active: true}

	tests := []struct {
		name string
		add  [][]Change
		want []Change
	}{
		{
			name: "distinct names keep their order",
			add:  [][]Change{{{Name: "b", New: b1}}, {{Name: "a", New: a1}, {Name: "c", New: c1}}},
			want: []Change{{Name: "b", New: b1}, {Name: "a", New: a1}, {Name: "c", New: c1}},
		},
		{
			name: "same name merges first Old with last New",
			add:  [][]Change{{{Name: "a", Old: a1, New: a2}}, {{Name: "b", New: b1}}, {{Name: "a", Old: a2, New: a3}}},
			want: []Change{{Name: "a", Old: a1, New: a3}, {Name: "b", New: b1}},
		},
		{
			name: "add then delete cancels out",
			add:  [][]Change{{{Name: "a", New: a1}, {Name: "b", New: b1}}, {{Name: "a", Old: a1}}},
			want: []Change{{Name: "b", New: b1}},
		},
		{
			name: "deactivate then reactivate cancels out",
			add:  [][]Change{{{Name: "a", Old: a1, New: a2}}, {{Name: "a", Old: a2, New: a1}}, {{Name: "c", New: c1}}},
			want: []Change{{Name: "c", New: c1}},
		},
		{
			name: "no-op change is dropped",
			add:  [][]Change{{{Name: "a", Old: a1, New: a1}, {Name: "b"}}},
			want: nil,
		},
		{
			name: "delete then re-add with other value",
			add:  [][]Change{{{Name: "a", Old: a1}}, {{Name: "a", New: a3}}},
			want: []Change{{Name: "a", Old: a1, New: a3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &subscriber{pending: make(map[string]*Change), wake: make(chan struct{}, 1)}
			for _, cs := range tt.add {
				s.add(cs)
			}
			var got []Change
			for {
				c, ok := s.next()
				if !ok {
					break
				}
				got = append(got, c)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d changes %s, want %d %s", len(got), fmtChanges(got), len(tt.want), fmtChanges(tt.want))
			}
			for i := range got {
				if got[i].Name != tt.want[i].Name || !sameChannel(got[i].Old, tt.want[i].Old) || !sameChannel(got[i].New, tt.want[i].New) {
					t.Errorf("change %d = %s, want %s", i, fmtChanges(got[i:i+1]), fmtChanges(tt.want[i:i+1]))
				}
			}
			if len(s.order) != 0 || len(s.pending) != 0 {
				t.Errorf("queue not empty after draining: order %v, pending %d", s.order, len(s.pending))
			}
		})
	}
}

func fmtChanges(cs []Change) string {
	s := "["
	for _, c := range cs {
		s += fmt.Sprintf("{%s %v -> %v}", c.Name, c.Old, c.New)
	}
	return s + "]"
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
