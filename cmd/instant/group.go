package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// subcommand is one command of a group such as `instant channels`.
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string, env *Env) error
}

// runGroup runs the command of group that args[0] names with the rest of
// args.
func runGroup(ctx context.Context, group string, cmds []subcommand, args []string, env *Env) error {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	if len(args) == 0 {
		return usagef("%s: want %s", group, want)
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	return usagef("%s: unknown command %q (want %s)", group, args[0], want)
}

// withNATS loads the settings, connects to NATS as command and runs f.
func withNATS(ctx context.Context, env *Env, command string, f func(settings, *natsConn) error) error {
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	nc, err := connectNATS(s, command, newLogger(env, s))
	if err != nil {
		return err
	}
	defer nc.Close()
	return f(s, nc)
}

// printList prints items as indented JSON ([] when there are none), or as
// a table: header's tab-separated columns, then row's line for each item.
func printList[T any](w io.Writer, asJSON bool, items []T, header string, row func(T) string) error {
	if asJSON {
		if items == nil {
			items = []T{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
