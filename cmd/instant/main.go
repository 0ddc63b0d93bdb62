// Command instant relays events from NATS to browsers through Centrifugo.
// Run `instant help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/instanthq/instant"
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

// usageError is a wrong command line: exit status 2 (an invalid setting
// is an *instant.SettingError).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitCode prints err as one line (several joined errors separated by
// "; ") and returns the exit status: 0 on success, 2 on a usage error or
// an invalid setting (*instant.SettingError), 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "instant: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	if _, ok := errors.AsType[*usageError](err); ok {
		return 2
	}
	if _, ok := errors.AsType[*instant.SettingError](err); ok {
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
  instant bridge status [--json]       the live bridge workers and the partitions each relays
  instant auth                         the login and token HTTP module
  instant serve                        bridge and auth in one process
  instant users add NAME [--groups g1,g2] [--staff] [--superuser] [--password-stdin]
  instant users rm NAME
  instant users list [--json]
  instant users passwd NAME [--password-stdin]
  instant publish CHANNEL [MESSAGE] [--data JSON] [--event-class C] [--bucket B] [--wait]
  instant channels add NAME --level LEVEL [--groups g1,g2] [--inactive]
  instant channels rm NAME
  instant channels list [--json]
  instant channels import FILE [--replace]
  instant version
  instant help [COMMAND]

Every command takes -h or --help. Settings are read from the environment;
see README.md.
`

// commandUsage returns the lines of usage for the command name (e.g.
// "publish", "channels" or "channels add"), each with its continuation
// lines, or "" when no command has that name.
func commandUsage(name string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  instant "); ok {
			in = rest == name || strings.HasPrefix(rest, name+" ")
		} else if !strings.HasPrefix(line, "    ") {
			in = false
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// printHelp prints the usage of the command name and the flags of fs (nil:
// none).
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n%s", commandUsage(name))
	if fs == nil || !hasFlags(fs) {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		kind, text := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" {
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%-28s %s\n", line, text)
	})
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// isHelp tells whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Run executes the command line args (without the program name). A
// command's -h or --help prints its usage on stdout and succeeds.
func Run(ctx context.Context, args []string, env *Env) error {
	err := dispatch(ctx, args, env)
	if h := (*helpRequested)(nil); errors.As(err, &h) {
		printHelp(env.Stdout, h.fs.Name(), h.fs)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, env *Env) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	if (cmd == "users" || cmd == "channels") && len(rest) > 0 && isHelp(rest[0]) {
		printHelp(env.Stdout, cmd, nil)
		return nil
	}
	switch cmd {
	case "bridge":
		if len(rest) > 0 && rest[0] == "status" {
			return runBridgeStatus(ctx, rest[1:], env)
		}
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
	case "version", "--version", "-version":
		if _, err := parseFlags(newFlags("version"), rest, 0, 0); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "instant %s\n", version)
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(env.Stdout, usage)
			return nil
		}
		if isHelp(rest[0]) {
			fmt.Fprint(env.Stdout, usage)
			return nil
		}
		return dispatch(ctx, append(slices.Clone(rest), "--help"), env)
	}
	return usagef("unknown command %q (run `instant help`)", cmd)
}
