package main

import (
	"context"
	"fmt"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/registry"
)

// runChannels is `instant channels add|rm|list|import`.
func runChannels(ctx context.Context, args []string, env *Env) error {
	return runGroup(ctx, "channels", []subcommand{
		{"add", channelsAdd}, {"rm", channelsRm}, {"list", channelsList}, {"import", channelsImport},
	}, args, env)
}

// withStore connects to NATS and runs f on the channel registry.
func withStore(ctx context.Context, env *Env, f func(*registry.Store) error) error {
	return withNATS(ctx, env, "channels", func(s settings, nc *natsConn) error {
		store, err := openStore(ctx, nc, s.Replicas)
		if err != nil {
			return err
		}
		return f(store)
	})
}

func channelsAdd(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("channels add")
	level := fs.String("level", "", "access level: public, users, groups, staff or superuser")
	groups := fs.String("groups", "", "comma-separated groups that may see the channel")
	inactive := fs.Bool("inactive", false, "register the channel inactive")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *level == "" {
		return usagef("channels add: --level is required (public, users, groups, staff or superuser)")
	}
	ch, err := instant.NewChannel(pos[0], instant.Level(*level), splitList(*groups))
	if err != nil {
		return usagef("channels add: %v", err)
	}
	ch.Active = !*inactive
	return withStore(ctx, env, func(store *registry.Store) error {
		if err := store.Put(ctx, ch); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "channel %s (%s) saved\n", ch.Name, ch.Level)
		return nil
	})
}

func channelsRm(ctx context.Context, args []string, env *Env) error {
	pos, err := parseFlags(newFlags("channels rm"), args, 1, 1)
	if err != nil {
		return err
	}
	return withStore(ctx, env, func(store *registry.Store) error {
		if err := store.Delete(ctx, pos[0]); err != nil {
			return fmt.Errorf("channels rm %s: %w", pos[0], err)
		}
		fmt.Fprintf(env.Stdout, "channel %s removed\n", pos[0])
		return nil
	})
}

func channelsList(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("channels list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	return withStore(ctx, env, func(store *registry.Store) error {
		chs, err := store.List(ctx)
		if err != nil {
			return err
		}
		return printList(env.Stdout, *asJSON, chs, "NAME\tLEVEL\tACTIVE\tGROUPS", func(c instant.Channel) string {
			return fmt.Sprintf("%s\t%s\t%t\t%s", c.Name, c.Level, c.Active, joinOrDash(c.Groups))
		})
	})
}

func channelsImport(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("channels import")
	replace := fs.Bool("replace", false, "remove registered channels the file does not list")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	chs, err := registry.LoadFile(pos[0])
	if err != nil {
		return usagef("channels import: %v", err)
	}
	return withStore(ctx, env, func(store *registry.Store) error {
		added, updated, removed, err := store.Import(ctx, chs, *replace)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "imported %s: %d added, %d updated, %d removed\n", pos[0], added, updated, removed)
		return nil
	})
}

func joinOrDash(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	out := list[0]
	for _, s := range list[1:] {
		out += "," + s
	}
	return out
}
