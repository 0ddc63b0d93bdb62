// Command instant relays events from NATS to browsers through Centrifugo.
// Run `instant help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, os.Args[1:], &Env{LookupEnv: os.LookupEnv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Env is what a command sees of its process: settings and standard streams.
type Env struct {
	LookupEnv func(string) (string, bool)
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
}

// usageError is a wrong command line or setting: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitCode prints err as one line and returns the exit status: 0 on
// success, 2 on a usage or configuration error, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "instant: %v\n", err)
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `instant relays events from NATS to browsers through Centrifugo.

Usage:
  instant init [DIR] [--centrifugo-port N] [--origins URL,...] [--force]
                                       write a Centrifugo config and a settings file with fresh secrets
  instant dev [--data DIR] [--nats-port N] [--centrifugo-port N] [--auth-port N] [--metrics-port N] [--centrifugo PATH]
                                       the whole stack on this machine
  instant bridge                       relay envelopes from NATS to Centrifugo
  instant auth                         the login and token HTTP module
  instant serve                        bridge and auth in one process
  instant users add NAME [--groups g1,g2] [--staff] [--superuser] [--password-stdin]
  instant users rm NAME | list [--json] | passwd NAME [--password-stdin]
  instant publish CHANNEL [MESSAGE] [--data JSON] [--event-class C] [--bucket B] [--wait]
  instant channels add NAME --level LEVEL [--groups g1,g2] [--inactive]
  instant channels rm NAME
  instant channels list [--json]
  instant channels import FILE [--replace]
  instant version

Settings are read from the environment; see README.md.
`

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "bridge":
		return runService(ctx, cmd, rest, env, true, false)
	case "auth":
		return runService(ctx, cmd, rest, env, false, true)
	case "serve":
		return runService(ctx, cmd, rest, env, true, true)
	case "users":
		return runUsers(ctx, rest, env)
	case "init":
		return runInit(ctx, rest, env)
	case "dev":
		return runDev(ctx, rest, env)
	case "publish":
		return runPublish(ctx, rest, env)
	case "channels":
		return runChannels(ctx, rest, env)
	case "version":
		fmt.Fprintf(env.Stdout, "instant %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	return usagef("unknown command %q (run `instant help`)", cmd)
}
