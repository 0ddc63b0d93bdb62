package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/instanthq/instant"
	"go.yaml.in/yaml/v3"
)

// fileEntry is one channel of a channels file.
type fileEntry struct {
	Name   string   `json:"name" yaml:"name"`
	Level  string   `json:"level" yaml:"level"`
	Groups []string `json:"groups" yaml:"groups"`
	Active *bool    `json:"active" yaml:"active"`
}

// fileFields are the keys a channels file entry may have.
var fileFields = map[string]bool{"name": true, "level": true, "groups": true, "active": true}

// LoadFile reads a channels file: a list of {"name", "level", "groups",
// "active"} objects, in JSON when the file name ends in ".json" and in
// YAML otherwise. For example, in YAML:
//
//	# channels.yaml
//	- name: public
//	  level: public
//	- name: staff        # stored as "$staff"
//	  level: staff
//	- name: ns:team
//	  level: groups
//	  groups: [team]
//	  active: false
//
// "level" is required, "active" defaults to true and "groups" to none. The
// naming rule of instant.ChannelName is applied, so "staff" above becomes
// "$staff". Every entry is validated; an unknown field, a malformed entry
// or two entries with the same (resulting) name is an error that names the
// file and the entry (its 1-based position and name). A file without any
// document is an error; an empty list ("[]") is not.
func LoadFile(path string) ([]instant.Channel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var entries []fileEntry
	if strings.EqualFold(filepath.Ext(path), ".json") {
		entries, err = parseJSON(data)
	} else {
		entries, err = parseYAML(data)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", path, err)
	}
	chs := make([]instant.Channel, 0, len(entries))
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		if len(e.Groups) == 0 {
			e.Groups = nil
		}
		c, err := instant.NewChannel(e.Name, instant.Level(e.Level), e.Groups)
		if err != nil {
			return nil, fmt.Errorf("registry: %s: %s: %w", path, entryName(i, e.Name), err)
		}
		if e.Active != nil {
			c.Active = *e.Active
		}
		if j, dup := seen[c.Name]; dup {
			return nil, fmt.Errorf("registry: %s: %s: duplicate channel %q, also entry %d", path, entryName(i, e.Name), c.Name, j+1)
		}
		seen[c.Name] = i
		chs = append(chs, c)
	}
	return chs, nil
}

// entryName describes entry i for error messages.
func entryName(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("entry %d", i+1)
	}
	return fmt.Sprintf("entry %d (%q)", i+1, name)
}

func parseJSON(data []byte) ([]fileEntry, error) {
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file, want a list of channels")
		}
		return nil, fmt.Errorf("want a list of channels: %w", err)
	}
	if raw == nil {
		return nil, errors.New("want a list of channels, not null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the list of channels")
	}
	entries := make([]fileEntry, len(raw))
	for i, r := range raw {
		d := json.NewDecoder(bytes.NewReader(r))
		d.DisallowUnknownFields()
		if err := d.Decode(&entries[i]); err != nil {
			var named struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(r, &named)
			return nil, fmt.Errorf("%s: %w", entryName(i, named.Name), err)
		}
	}
	return entries, nil
}

func parseYAML(data []byte) ([]fileEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file, want a list of channels")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list of channels", root.Line)
	}
	entries := make([]fileEntry, len(root.Content))
	for i, n := range root.Content {
		n = resolve(n)
		name := yamlName(n)
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s, line %d: want a mapping with name and level", entryName(i, ""), n.Line)
		}
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k := n.Content[j]; !fileFields[k.Value] {
				return nil, fmt.Errorf("%s, line %d: unknown field %q", entryName(i, name), k.Line, k.Value)
			}
		}
		if err := n.Decode(&entries[i]); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				// One line, not yaml's multi-line list.
				return nil, fmt.Errorf("%s: %s", entryName(i, name), strings.Join(te.Errors, "; "))
			}
			return nil, fmt.Errorf("%s, line %d: %w", entryName(i, name), n.Line, err)
		}
	}
	return entries, nil
}

// resolve follows YAML aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlName returns the value of the name key of mapping n, or "".
func yamlName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode {
			return n.Content[j+1].Value
		}
	}
	return ""
}
