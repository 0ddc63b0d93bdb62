package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
)

// validPort reports whether n is a TCP port number.
func validPort(n int) bool { return n > 0 && n <= 65535 }

// newFlags returns a flag set whose errors surface as usage errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// helpRequested is -h or --help among a command's flags: Run prints the
// command's usage and flags, and exits 0.
type helpRequested struct{ fs *flag.FlagSet }

func (h *helpRequested) Error() string { return h.fs.Name() + ": help requested" }

// parseFlags parses args, accepting flags before, between and after the
// positional arguments (everything after "--" is positional), and returns
// the positional arguments: min to max of them, or a usage error.
func parseFlags(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, &helpRequested{fs}
		} else if err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			pos = append(pos, tail...)
			if len(pos) < min || len(pos) > max {
				return nil, usagef("%s: wrong number of arguments (run `instant help`)", fs.Name())
			}
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
