package kvview

import (
	"fmt"
	"testing"

	"github.com/instanthq/instant"
)

// TestSubscriberMerge checks how changes waiting for a slow reader merge.
func TestSubscriberMerge(t *testing.T) {
	a1, a2, a3, b1, c1 := ptr("a1", true), ptr("a2", true), ptr("a3", true), ptr("b1", true), ptr("c1", true)
	type change = instant.Change[string]

	tests := []struct {
		name string
		add  [][]change
		want []change
	}{
		{
			name: "distinct names keep their order",
			add:  [][]change{{{Name: "b", New: b1}}, {{Name: "a", New: a1}, {Name: "c", New: c1}}},
			want: []change{{Name: "b", New: b1}, {Name: "a", New: a1}, {Name: "c", New: c1}},
		},
		{
			name: "same name merges first Old with last New",
			add:  [][]change{{{Name: "a", Old: a1, New: a2}}, {{Name: "b", New: b1}}, {{Name: "a", Old: a2, New: a3}}},
			want: []change{{Name: "a", Old: a1, New: a3}, {Name: "b", New: b1}},
		},
		{
			name: "add then delete cancels out",
			add:  [][]change{{{Name: "a", New: a1}, {Name: "b", New: b1}}, {{Name: "a", Old: a1}}},
			want: []change{{Name: "b", New: b1}},
		},
		{
			name: "change then change back cancels out",
			add:  [][]change{{{Name: "a", Old: a1, New: a2}}, {{Name: "a", Old: a2, New: ptr("a1", true)}}, {{Name: "c", New: c1}}},
			want: []change{{Name: "c", New: c1}},
		},
		{
			name: "no-op change is dropped",
			add:  [][]change{{{Name: "a", Old: a1, New: ptr("a1", true)}, {Name: "b"}}},
			want: nil,
		},
		{
			name: "delete then re-add with other value",
			add:  [][]change{{{Name: "a", Old: a1}}, {{Name: "a", New: a3}}},
			want: []change{{Name: "a", Old: a1, New: a3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &subscriber[string]{
				equal:   func(a, b string) bool { return a == b },
				pending: make(map[string]*change),
				wake:    make(chan struct{}, 1),
			}
			for _, cs := range tt.add {
				s.add(cs)
			}
			var got []change
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
				if got[i].Name != tt.want[i].Name || !s.same(got[i].Old, tt.want[i].Old) || !s.same(got[i].New, tt.want[i].New) {
					t.Errorf("change %d = %s, want %s", i, fmtChanges(got[i:i+1]), fmtChanges(tt.want[i:i+1]))
				}
			}
			if len(s.order) != 0 || len(s.pending) != 0 {
				t.Errorf("queue not empty after draining: order %v, pending %d", s.order, len(s.pending))
			}
		})
	}
}

func fmtChanges(cs []instant.Change[string]) string {
	s := "["
	for _, c := range cs {
		s += fmt.Sprintf("{%s %s -> %s}", c.Name, deref(c.Old), deref(c.New))
	}
	return s + "]"
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestFixed(t *testing.T) {
	v := Fixed(map[string]int{"b": 2, "a": 1}, Codec[int]{Equal: func(a, b int) bool { return a == b }})
	if x, ok := v.Lookup("a"); !ok || x != 1 {
		t.Errorf("Lookup(a) = %d, %t; want 1, true", x, ok)
	}
	if _, ok := v.Lookup("c"); ok {
		t.Error("Lookup(c) found a value")
	}
	if got := fmt.Sprint(v.All()); got != "[1 2]" {
		t.Errorf("All = %s, want [1 2]", got)
	}
	select {
	case <-v.Done():
	default:
		t.Error("Done of a Fixed View is not closed")
	}
	if _, ok := <-v.Changes(); ok {
		t.Error("Changes of a Fixed View delivered a change, want a closed channel")
	}
}
