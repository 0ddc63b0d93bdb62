package stacktest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSCluster is the three-node NATS cluster of deploy/nats, started from
// a copy of its files on loopback: client, route and monitoring ports
// rewritten to free ports on 127.0.0.1, the JetStream store in a
// temporary folder, and every "change-me-…" placeholder replaced by a
// fresh secret (the same one wherever it recurs, as deploy/secrets.sh
// does). The accounts and users are the deploy files' own.
type NATSCluster struct {
	Nodes []*NATSNode
	// Dir holds the rewritten files.
	Dir       string
	tls       *TLSFiles
	secrets   map[string]string // placeholder → secret
	passwords map[string]string // of accounts.conf, by user
}

// NATSClusterOptions tune StartNATSClusterWith. The zero value is the
// cluster of the repository's deploy/nats, without TLS.
type NATSClusterOptions struct {
	// Dir holds the files of deploy/nats to start from, e.g. a copy
	// with secrets written by deploy/secrets.sh. Defaults to
	// RepoRoot/deploy/nats.
	Dir string
	// TLS turns the commented TLS blocks of cluster.conf (clients and
	// routes, client certificates verified) on with these files; clients
	// then need Env's or Options' certificates.
	TLS *TLSFiles
}

// NATSNode is one nats-server of a NATSCluster.
type NATSNode struct {
	*Proc
	Name       string // server_name: nats-1, nats-2, nats-3
	ClientPort int
	HTTPPort   int
}

// ClientAddr returns 127.0.0.1:ClientPort.
func (n *NATSNode) ClientAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.ClientPort) }

var (
	placeholderRE = regexp.MustCompile(`change-me-[a-z0-9-]*[a-z0-9]`)
	routeRE       = regexp.MustCompile(`@nats-(\d):6222`)
	userRE        = regexp.MustCompile(`\{?\s*user: (\w+), password: "([^"]+)"`)
	tlsLineRE     = regexp.MustCompile(`(?m)^(\s*)#(tls: \{|  cert_file: |  key_file: |  ca_file: |  verify: |\})`)
)

// StartNATSCluster is StartNATSClusterWith the zero options: the
// repository's deploy/nats without TLS.
func StartNATSCluster(tb testing.TB) *NATSCluster {
	tb.Helper()
	return StartNATSClusterWith(tb, NATSClusterOptions{})
}

// StartNATSClusterWith writes the rewritten deploy/nats files and starts
// the three nodes, returning once each answers /healthz with JetStream
// on.
func StartNATSClusterWith(tb testing.TB, opts NATSClusterOptions) *NATSCluster {
	tb.Helper()
	src := opts.Dir
	if src == "" {
		src = filepath.Join(RepoRoot(tb), "deploy", "nats")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			tb.Fatalf("stacktest: %v", err)
		}
		return string(b)
	}
	c := &NATSCluster{Dir: tb.TempDir(), tls: opts.TLS, secrets: map[string]string{}, passwords: map[string]string{}}
	secret := func(s string) string {
		return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
			if c.secrets[p] == "" {
				c.secrets[p] = randomHex(tb)[:32]
			}
			return c.secrets[p]
		})
	}
	type ports struct{ client, route, http int }
	nodes := make([]ports, 3)
	for i := range nodes {
		nodes[i] = ports{FreePort(tb), FreePort(tb), FreePort(tb)}
	}
	cluster := read("cluster.conf")
	if opts.TLS != nil {
		cluster = enableTLS(tb, cluster, *opts.TLS)
	}
	accounts := secret(read("accounts.conf"))
	c.passwords = NATSPasswords(accounts)
	bin := Binary(tb, "nats-server")
	for i, n := range nodes {
		dir := filepath.Join(c.Dir, fmt.Sprintf("nats-%d", i+1))
		conf := replaceLine(tb, cluster, `listen: `, fmt.Sprintf("listen: 127.0.0.1:%d", n.client))
		conf = replaceLine(tb, conf, `http: `, fmt.Sprintf("http: 127.0.0.1:%d", n.http))
		conf = replaceLine(tb, conf, `  listen: `, fmt.Sprintf("  listen: 127.0.0.1:%d", n.route))
		conf = replaceLine(tb, conf, `  store_dir: `, fmt.Sprintf("  store_dir: %q", filepath.Join(dir, "jetstream")))
		if got := len(routeRE.FindAllString(conf, -1)); got != len(nodes) {
			tb.Fatalf("stacktest: cluster.conf has %d routes @nats-N:6222, want %d", got, len(nodes))
		}
		conf = routeRE.ReplaceAllStringFunc(conf, func(m string) string {
			j := int(m[len("@nats-")] - '1')
			return fmt.Sprintf("@127.0.0.1:%d", nodes[j].route)
		})
		name := fmt.Sprintf("nats-%d.conf", i+1)
		for file, content := range map[string]string{
			name:            read(name),
			"cluster.conf":  secret(conf),
			"accounts.conf": accounts,
		} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				tb.Fatalf("stacktest: %v", err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
				tb.Fatalf("stacktest: %v", err)
			}
		}
		node := &NATSNode{
			Name:       fmt.Sprintf("nats-%d", i+1),
			ClientPort: n.client,
			HTTPPort:   n.http,
		}
		node.Proc = NewProc(tb, node.Name, nil, bin, "-c", filepath.Join(dir, name))
		c.Nodes = append(c.Nodes, node)
	}
	for _, n := range c.Nodes {
		n.Start(tb)
	}
	for _, n := range c.Nodes {
		n.WaitHealthy(tb, time.Minute)
	}
	return c
}

// NATSPasswords returns the users and passwords of accounts, the content
// of deploy/nats/accounts.conf (`user: NAME, password: "…"`).
func NATSPasswords(accounts string) map[string]string {
	out := map[string]string{}
	for _, m := range userRE.FindAllStringSubmatch(accounts, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// enableTLS uncomments the two TLS blocks of cluster (clients, routes)
// and points them at files.
func enableTLS(tb testing.TB, cluster string, files TLSFiles) string {
	tb.Helper()
	if n := strings.Count(cluster, "#tls: {"); n != 2 {
		tb.Fatalf("stacktest: cluster.conf has %d commented TLS blocks, want 2 (clients, routes)", n)
	}
	cluster = tlsLineRE.ReplaceAllString(cluster, "$1$2")
	for _, r := range [][2]string{
		{`"/etc/nats/tls/server.pem"`, strconv.Quote(files.ServerCert)},
		{`"/etc/nats/tls/server-key.pem"`, strconv.Quote(files.ServerKey)},
		{`"/etc/nats/tls/ca.pem"`, strconv.Quote(files.CA)},
	} {
		if n := strings.Count(cluster, r[0]); n != 2 {
			tb.Fatalf("stacktest: cluster.conf names %s %d times, want 2 (clients, routes)", r[0], n)
		}
		cluster = strings.ReplaceAll(cluster, r[0], r[1])
	}
	return cluster
}

// replaceLine replaces the one line of s that starts with prefix (at
// column 0, so "listen: " does not match the indented "  listen: ").
func replaceLine(tb testing.TB, s, prefix, line string) string {
	tb.Helper()
	lines := strings.Split(s, "\n")
	found := 0
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
			found++
		}
	}
	if found != 1 {
		tb.Fatalf("stacktest: %d lines start with %q, want 1", found, prefix)
	}
	return strings.Join(lines, "\n")
}

// WaitHealthy waits until the node answers /healthz?js-enabled-only=true
// with 200.
func (n *NATSNode) WaitHealthy(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", n.HTTPPort)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("stacktest: %s not healthy within %v (%v)", n.Name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Password returns user's password in accounts.conf (for a placeholder
// "change-me-<user>", the secret that replaced it).
func (c *NATSCluster) Password(tb testing.TB, user string) string {
	tb.Helper()
	p := c.passwords[user]
	if p == "" {
		tb.Fatalf("stacktest: accounts.conf has no user %s", user)
	}
	return p
}

// URL returns a NATS_URL for user listing every node, starting with node
// first (so that clients spread over the nodes); with TLS the scheme is
// tls://.
func (c *NATSCluster) URL(tb testing.TB, user string, first int) string {
	tb.Helper()
	scheme := "nats://"
	if c.tls != nil {
		scheme = "tls://"
	}
	pass := c.Password(tb, user)
	var urls []string
	for i := range c.Nodes {
		n := c.Nodes[(first+i)%len(c.Nodes)]
		urls = append(urls, scheme+user+":"+pass+"@"+n.ClientAddr())
	}
	return strings.Join(urls, ",")
}

// Env returns the NATS settings of user, as instant and the nats CLI
// read them: NATS_URL, and with TLS NATS_CA, NATS_CERT and NATS_KEY.
func (c *NATSCluster) Env(tb testing.TB, user string) []string {
	tb.Helper()
	env := []string{"NATS_URL=" + c.URL(tb, user, 0)}
	if c.tls != nil {
		env = append(env, "NATS_CA="+c.tls.CA, "NATS_CERT="+c.tls.ClientCert, "NATS_KEY="+c.tls.ClientKey)
	}
	return env
}

// Options returns the nats.go options matching Env: none without TLS.
func (c *NATSCluster) Options() []nats.Option {
	if c.tls == nil {
		return nil
	}
	return []nats.Option{nats.RootCAs(c.tls.CA), nats.ClientCert(c.tls.ClientCert, c.tls.ClientKey)}
}
