package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/users"
)

// runUsers is `instant users add|rm|list|passwd`.
func runUsers(ctx context.Context, args []string, env *Env) error {
	return runGroup(ctx, "users", []subcommand{
		{"add", usersAdd}, {"rm", usersRm}, {"list", usersList}, {"passwd", usersPasswd},
	}, args, env)
}

// withUsers connects to NATS and runs f on the user store.
func withUsers(ctx context.Context, env *Env, f func(*users.Store) error) error {
	return withNATS(ctx, env, "users", func(s settings, nc *natsConn) error {
		js, err := jetstream.New(nc.Conn)
		if err != nil {
			return err
		}
		store, err := users.Open(ctx, js, users.DefaultBucket, users.WithReplicas(s.Replicas))
		if err != nil {
			return fmt.Errorf("user store: %w (it needs JetStream)", err)
		}
		return f(store)
	})
}

// userError makes invalid input a usage error.
func userError(cmd string, err error) error {
	for _, e := range []error{instant.ErrBadUsername, users.ErrBadPassword, instant.ErrBadGroup} {
		if errors.Is(err, e) {
			return usagef("%s: %v", cmd, err)
		}
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

func usersAdd(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("users add")
	groups := fs.String("groups", "", "comma-separated groups")
	staff := fs.Bool("staff", false, "staff member")
	superuser := fs.Bool("superuser", false, "superuser")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	u := instant.User{Identity: instant.Identity{Username: pos[0], Groups: splitList(*groups), Staff: *staff, Superuser: *superuser}}
	if err := instant.ValidUsername(u.Username); err != nil {
		return usagef("users add: %v", err)
	}
	password, err := readPassword(env, *fromStdin)
	if err != nil {
		return err
	}
	return withUsers(ctx, env, func(store *users.Store) error {
		if err := store.Add(ctx, u, password); err != nil {
			return userError("users add", err)
		}
		fmt.Fprintf(env.Stdout, "user %s added\n", u.Username)
		return nil
	})
}

func usersRm(ctx context.Context, args []string, env *Env) error {
	pos, err := parseFlags(newFlags("users rm"), args, 1, 1)
	if err != nil {
		return err
	}
	return withUsers(ctx, env, func(store *users.Store) error {
		if err := store.Delete(ctx, pos[0]); err != nil {
			return userError("users rm", err)
		}
		fmt.Fprintf(env.Stdout, "user %s removed\n", pos[0])
		return nil
	})
}

func usersList(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("users list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	return withUsers(ctx, env, func(store *users.Store) error {
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		return printList(env.Stdout, *asJSON, list, "USERNAME\tGROUPS\tSTAFF\tSUPERUSER", func(u instant.User) string {
			return fmt.Sprintf("%s\t%s\t%t\t%t", u.Username, joinOrDash(u.Groups), u.Staff, u.Superuser)
		})
	})
}

func usersPasswd(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("users passwd")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	password, err := readPassword(env, *fromStdin)
	if err != nil {
		return err
	}
	return withUsers(ctx, env, func(store *users.Store) error {
		if err := store.SetPassword(ctx, pos[0], password); err != nil {
			return userError("users passwd", err)
		}
		fmt.Fprintf(env.Stdout, "password of %s changed; their sessions ended\n", pos[0])
		return nil
	})
}

// readPassword reads the first line of stdin, or asks twice on the
// terminal. It never takes the password from the command line, where it
// would land in shell history.
func readPassword(env *Env, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		if p := strings.TrimRight(line, "\r\n"); p != "" {
			if err := users.ValidPassword(p); err != nil {
				return "", usagef("%v", err)
			}
			return p, nil
		}
		return "", usagef("--password-stdin: stdin is empty")
	}
	f, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usagef("no terminal to ask the password on: use --password-stdin")
	}
	var answers [2]string
	for i, prompt := range []string{"Password: ", "Password (again): "} {
		fmt.Fprint(env.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", err
		}
		answers[i] = string(b)
	}
	if answers[0] != answers[1] {
		return "", usagef("the passwords differ")
	}
	return answers[0], nil
}
