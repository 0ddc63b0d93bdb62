package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/instanthq/instant/centrifugo"
)

// natsSettings are the TLS and credential settings of every NATS
// connection; they carry the names the nats CLI reads too, so one
// environment serves both.
type natsSettings struct {
	CA    string // NATS_CA: PEM file of the CA that signed the servers' certificates
	Cert  string // NATS_CERT: PEM client certificate (with NATS_KEY), for servers that verify clients
	Key   string // NATS_KEY
	Creds string // NATS_CREDS: .creds file (user JWT and nkey seed)
	NKey  string // NATS_NKEY: file holding a user nkey seed
}

// options returns the nats.go options of these settings. A file that
// cannot be read fails here, at start, naming its setting.
func (n natsSettings) options() ([]nats.Option, error) {
	var opts []nats.Option
	for _, f := range []struct{ name, path string }{
		{"NATS_CA", n.CA}, {"NATS_CERT", n.Cert}, {"NATS_KEY", n.Key}, {"NATS_CREDS", n.Creds}, {"NATS_NKEY", n.NKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, settingf(f.name, "%v", err)
		}
	}
	if n.CA != "" {
		opts = append(opts, nats.RootCAs(n.CA))
	}
	if n.Cert != "" {
		opts = append(opts, nats.ClientCert(n.Cert, n.Key))
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			return nil, settingf("NATS_NKEY", "%v", err)
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// centrifugoClient returns the Centrifugo API client of s: over https,
// with CENTRIFUGO_CA as the only trusted CA when it is set.
func (s settings) centrifugoClient() (*centrifugo.Client, error) {
	cfg := centrifugo.Config{URL: s.apiURL(), Key: s.APIKey, MaxRequestBytes: s.BatchBytes}
	if s.CentrifugoCA != "" {
		pem, err := os.ReadFile(s.CentrifugoCA)
		if err != nil {
			return nil, settingf("CENTRIFUGO_CA", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, settingf("CENTRIFUGO_CA", "%s holds no PEM certificate", s.CentrifugoCA)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr.MaxIdleConnsPerHost = 64
		cfg.HTTPClient = &http.Client{Transport: tr, Timeout: centrifugo.DefaultTimeout}
	}
	return centrifugo.New(cfg), nil
}
