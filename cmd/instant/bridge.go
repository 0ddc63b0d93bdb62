package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/instanthq/instant/bridge"
	"github.com/instanthq/instant/monitor"
	"github.com/instanthq/instant/registry"
)

// serveBridge runs the bridge and its monitoring endpoints on nc until ctx
// ends. static, when not nil, replaces the registry bucket.
func serveBridge(ctx context.Context, s settings, static *registry.View, nc *natsConn, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g, ctx := errgroup.WithContext(ctx)
	channels := static
	if channels == nil {
		// A NATS cluster just started answers once it has a leader.
		err := bridge.UntilReady(ctx, log.Named("bridge"), func(ctx context.Context) error {
			store, err := openStore(ctx, nc, s.Replicas)
			if err == nil {
				channels, err = store.Watch(ctx)
			}
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while waiting
			}
			return err
		}
	}
	relay, err := s.centrifugoClient()
	if err != nil {
		return err
	}
	metrics := bridge.NewMetrics(reg)
	b, err := bridge.New(nc.Conn, channels, relay, s.Bridge, log.Named("bridge"), metrics)
	if err != nil {
		return err
	}
	if s.MetricsAddr != "" {
		mux := http.NewServeMux()
		monitor.Register(mux, reg, natsCheck(nc.Conn), monitor.Check{Name: "centrifugo", Func: relay.Ping})
		if err := serveHTTP(ctx, g, s.MetricsAddr, "INSTANT_METRICS_ADDR", mux, log, s.HTTP); err != nil {
			return err
		}
	}
	if s.Bridge.Mode == bridge.ModeJetStream {
		js, err := jetstream.New(nc.Conn)
		if err != nil {
			return err
		}
		go bridge.WatchStream(ctx, js, s.Bridge, 0, metrics, log.Named("bridge"))
	}
	g.Go(func() error { return b.Run(ctx) })
	return g.Wait()
}

// channelsFile returns the read-only registry of INSTANT_CHANNELS_FILE,
// or nil when it is not set.
func channelsFile(s settings) (*registry.View, error) {
	if s.ChannelsFile == "" {
		return nil, nil
	}
	chs, err := registry.LoadFile(s.ChannelsFile)
	if err != nil {
		return nil, settingf("INSTANT_CHANNELS_FILE", "%v", err)
	}
	return registry.Static(chs), nil
}

// openStore opens the channel registry bucket, creating it with replicas
// when missing.
func openStore(ctx context.Context, nc *natsConn, replicas int) (*registry.Store, error) {
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		return nil, err
	}
	store, err := registry.Open(ctx, js, registry.DefaultBucket, registry.WithReplicas(replicas))
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return nil, fmt.Errorf("the channel registry needs JetStream, which this NATS server lacks: enable it, or set INSTANT_CHANNELS_FILE")
	}
	return store, err
}

// natsConn is a NATS connection whose Close and Drain return only after
// the connection's callbacks (which log) have run.
type natsConn struct {
	*nats.Conn
	closed chan struct{}
}

// Close closes the connection and waits for it to be closed.
func (c *natsConn) Close() {
	c.Conn.Close()
	<-c.closed
}

// Drain drains the connection and waits for it to be closed.
func (c *natsConn) Drain() error {
	err := c.Conn.Drain()
	<-c.closed
	return err
}

// connectNATS connects to s.NATSURL for command (e.g. "bridge") with the
// TLS and credentials of s.NATS and endless reconnects, logging
// connection changes: every command connects here. Replies to the connection come
// on its own inbox prefix, _INBOX_<command>, so that NATS permissions can
// keep the parts from reading each other's replies.
func connectNATS(s settings, command string, log *zap.Logger) (*natsConn, error) {
	closed := make(chan struct{})
	url := s.NATSURL
	opts, err := s.NATS.options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(opts,
		nats.Name("instant "+command),
		nats.CustomInboxPrefix(inboxPrefix(command)),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", zap.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("NATS error", zap.String("subject", subject), zap.Error(err))
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s (NATS_URL): %w", redactURL(url), err)
	}
	return &natsConn{Conn: nc, closed: closed}, nil
}

// inboxPrefix is the reply subject prefix of command's connections.
func inboxPrefix(command string) string { return "_INBOX_" + command }

func natsCheck(nc *nats.Conn) monitor.Check {
	return monitor.Check{Name: "nats", Func: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("connection %s", s)
		}
		return nil
	}}
}

// httpTimeouts bound the connections of an HTTP server (see
// http.Server): a client cannot hold one open by sending slowly or by
// sending nothing.
type httpTimeouts struct {
	ReadHeader time.Duration // the request's headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // the response
	Idle       time.Duration // a kept-alive connection between requests
}

// defaultHTTPTimeouts are the timeouts of every server: requests are a
// few KiB at most, answers are quick.
var defaultHTTPTimeouts = httpTimeouts{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: time.Minute}

// serveHTTP listens on addr now (so a busy port fails at start, naming
// setting), then serves h in g with timeouts t until ctx ends. Every
// response carries X-Content-Type-Options: nosniff.
func serveHTTP(ctx context.Context, g *errgroup.Group, addr, setting string, h http.Handler, log *zap.Logger, t httpTimeouts) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return settingf(setting, "cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{
		Handler:           noSniff(h),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	log.Info("serving HTTP", zap.String("addr", ln.Addr().String()), zap.String("setting", setting))
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return nil
}

// noSniff tells browsers not to guess the type of h's responses.
func noSniff(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// runBridgeStatus is `instant bridge status [--json]`: the live workers
// and which of them relays each partition, from the lease bucket.
func runBridgeStatus(ctx context.Context, args []string, env *Env) error {
	fs := newFlags("bridge status")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := loadSettings(env.LookupEnv)
	if err != nil {
		return err
	}
	nc, err := connectNATS(s, "bridge", newLogger(env, s))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		return err
	}
	st, err := bridge.ReadStatus(ctx, js, s.Bridge)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "stream %s: %d partitions by channel, and one for the bare subject\n\n", st.Stream, st.Partitions)
	fmt.Fprintln(w, "WORKER\tHOST\tPID\tSTARTED\tPARTITIONS")
	for _, wk := range st.Workers {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", wk.ID, wk.Host, wk.PID, wk.Started.Format(time.RFC3339), strings.Join(wk.Partitions, ","))
	}
	fmt.Fprintln(w, "\nPARTITION\tWORKER\tPENDING")
	for _, p := range st.Assignment {
		owner := p.Owner
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\n", p.Partition, owner, p.Pending)
	}
	return w.Flush()
}
