package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant/internal/stacktest"
)

// TestPlaceholderSecretsRefused checks that a secret setting still holding
// a change-me placeholder of deploy/ stops every command with exit 2,
// naming the setting, before anything connects.
func TestPlaceholderSecretsRefused(t *testing.T) {
	for _, tc := range []struct {
		setting, value string
		args           []string
	}{
		{"NATS_URL", "nats://bridge:change-me-bridge@127.0.0.1:1", []string{"bridge"}},
		{"NATS_URL", "nats://admin:change-me-admin@127.0.0.1:1", []string{"channels", "list"}},
		{"CENTRIFUGO_API_KEY", "change-me-api-key", []string{"bridge"}},
		{"CENTRIFUGO_HMAC_KEY", "change-me-hmac-key", []string{"auth"}},
		{"INSTANT_IDENTITY_KEY", "CHANGE-ME", []string{"auth"}},
	} {
		env := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "CENTRIFUGO_API_KEY": "k", "CENTRIFUGO_HMAC_KEY": "h"}
		env[tc.setting] = tc.value
		code, _, stderr := run(t, env, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.setting+":") || !strings.Contains(stderr, "placeholder") {
			t.Errorf("%s with %s a placeholder: exit %d, %q; want 2 naming it", tc.args, tc.setting, code, stderr)
		}
		if strings.Contains(stderr, "change-me-") {
			t.Errorf("the error repeats the value: %q", stderr)
		}
	}
}

// TestProductionSettingsMalformed checks the errors of the settings for
// production: each names its variable, exit 2.
func TestProductionSettingsMalformed(t *testing.T) {
	for _, tc := range []struct{ setting, value, also string }{
		{"INSTANT_REPLICAS", "0", ""},
		{"INSTANT_REPLICAS", "7", ""},
		{"INSTANT_STREAM_MAX_BYTES", "-1", ""},
		{"INSTANT_STREAM_MAX_AGE", "forever", ""},
		{"INSTANT_TRUSTED_PROXIES", "10.0.0.0/8,proxy", ""},
		{"NATS_CERT", "/cert.pem", ""}, // without NATS_KEY
		{"NATS_CREDS", "/a.creds", "NATS_NKEY=/seed"},
		{"CENTRIFUGO_CA", "/ca.pem", ""}, // with an http:// host
		{"NATS_CA", filepath.Join(t.TempDir(), "missing.pem"), ""},
	} {
		env := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "CENTRIFUGO_API_KEY": "k", tc.setting: tc.value}
		if k, v, ok := strings.Cut(tc.also, "="); ok {
			env[k] = v
		}
		code, _, stderr := run(t, env, "bridge")
		if code != 2 || !strings.Contains(stderr, tc.setting) {
			t.Errorf("%s=%q: exit %d, %q; want 2 naming it", tc.setting, tc.value, code, stderr)
		}
	}
}

// TestNATSTLSAndReplicas runs `instant channels add` against a NATS server
// that requires TLS with client certificates: with NATS_CA, NATS_CERT and
// NATS_KEY it connects and creates the bucket with INSTANT_REPLICAS (1
// here: a single server), without the client certificate it fails.
func TestNATSTLSAndReplicas(t *testing.T) {
	files := stacktest.NewTLS(t)
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: files.ServerCert, KeyFile: files.ServerKey, CaFile: files.CA, Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := s.ClientURL()
	env := map[string]string{"NATS_URL": url, "NATS_CA": files.CA, "INSTANT_REPLICAS": "1"}
	if code, _, stderr := run(t, env, "channels", "add", "public", "--level", "public"); code != 1 || !strings.Contains(stderr, "NATS_URL") {
		t.Errorf("without a client certificate: exit %d, %q; want 1 (connection refused)", code, stderr)
	}
	env["NATS_CERT"], env["NATS_KEY"] = files.ClientCert, files.ClientKey
	if code, _, stderr := run(t, env, "channels", "add", "public", "--level", "public"); code != 0 {
		t.Fatalf("with the client certificate: exit %d, %s", code, stderr)
	}
	nc, err := nats.Connect(url, nats.RootCAs(files.CA), nats.ClientCert(files.ClientCert, files.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(t.Context(), "instant_channels")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 10 || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 1 {
		t.Errorf("bucket history %d, replicas %d; want 10 and 1", st.History(), st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas)
	}
}

// TestCentrifugoCA checks that CENTRIFUGO_CA makes the API client trust
// exactly that CA over https.
func TestCentrifugoCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":{"nodes":[]}}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writeCertPEM(t, ca, srv.Certificate().Raw)
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "https://"), ":")
	lookup := func(extra map[string]string) func(string) (string, bool) {
		env := map[string]string{"CENTRIFUGO_HOST": "https://" + host, "CENTRIFUGO_PORT": port, "CENTRIFUGO_API_KEY": "k"}
		for k, v := range extra {
			env[k] = v
		}
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{{map[string]string{"CENTRIFUGO_CA": ca}, true}, {nil, false}} {
		s, err := loadSettings(lookup(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.centrifugoClient()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(ctx); (err == nil) != tc.want {
			t.Errorf("CENTRIFUGO_CA %q: Ping error %v, want success %v", tc.env["CENTRIFUGO_CA"], err, tc.want)
		}
	}
}

func writeCertPEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pemCert(der), 0o600); err != nil {
		t.Fatal(err)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
