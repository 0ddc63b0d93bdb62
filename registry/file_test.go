package registry

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/instanthq/instant"
)

const goodYAML = `# channels
- name: public
  level: public
- name: staff
  level: staff
- name: ns:team
  level: groups
  groups: [team, ops]
  active: false
- name: $users
  level: users
  active: true
`

const goodJSON = `[
  {"name": "public", "level": "public"},
  {"name": "staff", "level": "staff"},
  {"name": "ns:team", "level": "groups", "groups": ["team", "ops"], "active": false},
  {"name": "$users", "level": "users", "active": true}
]`

var goodChannels = []instant.Channel{
	{Name: "public", Level: instant.LevelPublic, Active: true},
	{Name: "$staff", Level: instant.LevelStaff, Active: true},
	{Name: "ns:$team", Level: instant.LevelGroups, Active: false, Groups: []string{"team", "ops"}},
	{Name: "$users", Level: instant.LevelUsers, Active: true},
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string // file name, whose extension picks the format
		content string
		want    []instant.Channel
		wantErr error    // when set, the error must wrap it
		wantMsg []string // when set, the error must contain each
	}{
		{name: "yaml", file: "channels.yaml", content: goodYAML, want: goodChannels},
		{name: "yml", file: "channels.yml", content: goodYAML, want: goodChannels},
		{name: "json", file: "channels.json", content: goodJSON, want: goodChannels},
		{name: "json as yaml", file: "channels", content: goodJSON, want: goodChannels},
		{name: "yaml empty list", file: "c.yaml", content: "[]\n", want: []instant.Channel{}},
		{name: "json empty list", file: "c.json", content: "[]", want: []instant.Channel{}},
		{
			name: "yaml naming rule", file: "c.yaml",
			content: "- {name: chan, level: users}\n- {name: 'ns:chan', level: superuser}\n- {name: 'ns:$x', level: groups, groups: [g]}\n",
			want: []instant.Channel{
				{Name: "$chan", Level: instant.LevelUsers, Active: true},
				{Name: "ns:$chan", Level: instant.LevelSuperuser, Active: true},
				{Name: "ns:$x", Level: instant.LevelGroups, Active: true, Groups: []string{"g"}},
			},
		},
		{
			name: "yaml unknown field", file: "c.yaml",
			content: "- {name: public, level: public}\n- {name: news, level: public, actve: false}\n",
			wantMsg: []string{"c.yaml", "entry 2", `"news"`, "line 2", `unknown field "actve"`},
		},
		{
			name: "json unknown field", file: "c.json",
			content: `[{"name":"public","level":"public"},{"name":"news","level":"public","actve":false}]`,
			wantMsg: []string{"c.json", "entry 2", `"news"`, "actve"},
		},
		{
			name: "yaml bad level", file: "c.yaml",
			content: "- {name: public, level: public}\n- {name: news, level: admin}\n",
			wantErr: instant.ErrBadLevel, wantMsg: []string{"c.yaml", "entry 2", `"news"`, "admin"},
		},
		{
			name: "json bad level", file: "c.json",
			content: `[{"name":"news","level":"admin"}]`,
			wantErr: instant.ErrBadLevel, wantMsg: []string{"c.json", "entry 1", `"news"`},
		},
		{
			name: "missing level", file: "c.yaml", content: "- name: news\n",
			wantErr: instant.ErrBadLevel, wantMsg: []string{"entry 1", `"news"`},
		},
		{
			name: "yaml duplicate after naming rule", file: "c.yaml",
			content: "- {name: staff, level: staff}\n- {name: public, level: public}\n- {name: $staff, level: staff}\n",
			wantMsg: []string{"c.yaml", "entry 3", "duplicate", `"$staff"`, "entry 1"},
		},
		{
			name: "json duplicate", file: "c.json",
			content: `[{"name":"public","level":"public"},{"name":"public","level":"public","active":false}]`,
			wantMsg: []string{"c.json", "entry 2", "duplicate", "entry 1"},
		},
		{
			name: "yaml duplicate key", file: "c.yaml", content: "- {name: a, level: public, name: b}\n",
			wantMsg: []string{"entry 1", "already defined"},
		},
		{
			name: "bad name", file: "c.yaml", content: "- {name: a.b, level: public}\n",
			wantErr: instant.ErrBadChannel, wantMsg: []string{"entry 1", `"a.b"`},
		},
		{
			name: "public with private prefix", file: "c.json", content: `[{"name":"$x","level":"public"}]`,
			wantErr: instant.ErrBadChannel, wantMsg: []string{"entry 1"},
		},
		{
			name: "empty group", file: "c.yaml", content: "- {name: x, level: groups, groups: ['']}\n",
			wantErr: instant.ErrBadChannel, wantMsg: []string{"entry 1", `"x"`},
		},
		{name: "empty yaml", file: "c.yaml", content: "# nothing\n", wantMsg: []string{"c.yaml", "empty"}},
		{name: "empty json", file: "c.json", content: " \n", wantMsg: []string{"c.json", "empty"}},
		{name: "json null", file: "c.json", content: "null", wantMsg: []string{"list"}},
		{name: "yaml mapping", file: "c.yaml", content: "name: public\nlevel: public\n", wantMsg: []string{"want a list"}},
		{name: "yaml scalar entry", file: "c.yaml", content: "- public\n", wantMsg: []string{"entry 1", "mapping"}},
		{name: "json trailing data", file: "c.json", content: `[] []`, wantMsg: []string{"after"}},
		{name: "yaml two documents", file: "c.yaml", content: "[]\n---\n[]\n", wantMsg: []string{"document"}},
		{name: "json syntax", file: "c.json", content: `[{"name":}]`, wantMsg: []string{"c.json"}},
		{name: "yaml active not bool", file: "c.yaml", content: "- {name: x, level: public, active: maybe}\n", wantMsg: []string{"entry 1", `"x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadFile(path)
			if tt.wantErr == nil && tt.wantMsg == nil {
				if err != nil {
					t.Fatalf("LoadFile: %v", err)
				}
				if !equalChannels(got, tt.want) {
					t.Errorf("LoadFile = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadFile = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("LoadFile error %q does not wrap %q", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("LoadFile error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

// equalChannels compares channel lists, with nil and empty Groups equal.
func equalChannels(a, b []instant.Channel) bool {
	return slices.EqualFunc(a, b, func(x, y instant.Channel) bool { return sameChannel(&x, &y) })
}
