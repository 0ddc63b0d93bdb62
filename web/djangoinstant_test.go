package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/instanthq/instant"
	"github.com/instanthq/instant/auth"
)

// djangoInstantPage is a page of a site that still uses django-instant's
// JavaScript client (djangoinstant 0.5.0, with centrifuge-js): app.js
// makes the requests that client makes, in its order and with its
// options. Every POST goes through one helper, as in the client:
// credentials "include", mode "cors", Content-Type application/json, and
// X-CSRFToken only once a get_token answer gave a csrf_token (login's
// answer is not read). init() asks get_token with {} and connects to
// Centrifugo with the ws_token; connect then subscribes to every channel
// of that answer with its token; each publication's data is a string
// parsed with JSON.parse into the client's Message fields (channelName,
// msg, data, eventClass, site, bucket). The client never calls subscribe/
// and never renews a token. (The package itself cannot be installed with
// npm ci here: `npm view djangoinstant` answers 404, so the page replays
// it, on the centrifuge-js that web/ already installs.)
const djangoInstantPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>a site on django-instant's client</title>
<script id="config" type="application/json">{{CONFIG}}</script>
<script src="/centrifuge.js"></script>
<script src="/app.js"></script>
</head>
<body><pre id="log"></pre></body>
</html>
`

const djangoInstantApp = `"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
window.requests = [];
window.channels = [];
window.subscribed = [];
window.received = [];
let csrfToken = "";
let client;

function postOptions(payload) {
  const options = { method: "post", credentials: "include", mode: "cors", body: JSON.stringify(payload) };
  options.headers = { "Content-Type": "application/json" };
  if (csrfToken !== "") {
    options.headers = { "Content-Type": "application/json", "X-CSRFToken": csrfToken };
  }
  return options;
}

async function post(path, payload) {
  const response = await fetch(config.backend + path, postOptions(payload));
  requests.push(path + " " + response.status);
  if (!response.ok) {
    throw new Error(path + " " + response.status);
  }
  return response;
}

async function getToken() {
  const data = await (await post("/instant/get_token/", {})).json();
  csrfToken = data.csrf_token;
  for (const c of data.channels) {
    channels.push(c);
  }
  return data.ws_token;
}

window.init = async () => {
  const token = await getToken();
  client = new Centrifuge(config.websockets + "/connection/websocket", { token, debug: false });
};

window.login = async (username, password) => {
  await post("/instant/login/", { username, password });
};

window.connect = async () => {
  const connected = new Promise((resolve) => client.on("connected", () => resolve(true)));
  client.connect();
  await connected;
  for (const c of channels) {
    const sub = client.newSubscription(c.name, { token: c.token });
    sub.on("subscribed", () => subscribed.push(c.name));
    sub.on("error", (ctx) => requests.push("subscription error " + JSON.stringify(ctx)));
    sub.on("publication", (ctx) => {
      const m = JSON.parse(ctx.data);
      received.push({
        channelName: m.channel,
        site: m.site,
        msg: m.message === undefined ? "" : m.message,
        data: m.data === undefined ? {} : m.data,
        eventClass: m.event_class === undefined ? "" : m.event_class,
        bucket: m.bucket === undefined ? "" : m.bucket,
      });
      document.getElementById("log").textContent += m.channel + ": " + m.message + "\n";
    });
    sub.subscribe();
  }
};

// What such a site runs on every page load: tokens if the visitor is
// logged in (the client's init, which throws when not), then connect.
window.pageLoad = async () => {
  try {
    await init();
  } catch (err) {
    return "not logged in: " + err.message;
  }
  await connect();
  return "connected";
};
`

// djangoMessage is a message as the client's Message class holds it
// (without its date).
type djangoMessage struct {
	ChannelName string         `json:"channelName"`
	Site        string         `json:"site"`
	Msg         string         `json:"msg"`
	Data        map[string]any `json:"data"`
	EventClass  string         `json:"eventClass"`
	Bucket      string         `json:"bucket"`
}

// TestBrowserDjangoInstantClient runs the request sequence of
// django-instant's JavaScript client from a page on another origin (an
// INSTANT_ALLOWED_ORIGINS entry) against the string payload encoding: it
// logs in, reloads, gets exactly its channels from get_token without a
// CSRF header, and receives each message with the fields it reads.
func TestBrowserDjangoInstantClient(t *testing.T) {
	centrifugeJS, err := os.ReadFile(filepath.Join("node_modules", "centrifuge", "dist", "centrifuge.js"))
	if err != nil {
		t.Fatalf("centrifuge-js for the page: %v (run `cd web && npm ci`, or make test)", err)
	}
	// The site's origin: another loopback port, known before the auth
	// server starts so that it can be allowed.
	site := httptest.NewUnstartedServer(nil)
	origin := "http://" + site.Listener.Addr().String()
	s := startStackWith(t, stackConfig{
		ttl: 10 * time.Minute, encoding: instant.EncodingString, origins: []string{origin},
	})
	config, err := json.Marshal(map[string]string{"backend": s.url, "websockets": strings.TrimSuffix(s.cent.WSURL, "/connection/websocket")})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]struct{ contentType, body string }{
		"/":              {"text/html; charset=utf-8", strings.Replace(djangoInstantPage, "{{CONFIG}}", string(config), 1)},
		"/app.js":        {"text/javascript", djangoInstantApp},
		"/centrifuge.js": {"text/javascript", string(centrifugeJS)},
	}
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", f.contentType)
		_, _ = w.Write([]byte(f.body))
	})
	site.Start()
	t.Cleanup(site.Close)

	p := s.openPage() // the demo page: the browser, with a first same-origin look
	p.do("open the site", chromedp.Navigate(origin+"/"), chromedp.WaitReady(chromedp.ID("log")))
	if got := eval[string](p, `pageLoad()`, chromedp.EvalAwaitPromise); !strings.HasPrefix(got, "not logged in") {
		t.Fatalf("before login the page load ended %q, want not logged in", got)
	}
	eval[bool](p, `login("alice", `+jsString(password)+`).then(() => true)`, chromedp.EvalAwaitPromise)
	p.do("reload", chromedp.Reload(), chromedp.WaitReady(chromedp.ID("log")))
	if got := eval[string](p, `pageLoad()`, chromedp.EvalAwaitPromise); got != "connected" {
		t.Fatalf("after login and reload the page load ended %q, want connected (requests %v)", got, eval[[]string](p, `requests`))
	}
	var granted []string
	for _, c := range eval[[]map[string]any](p, `channels`) {
		granted = append(granted, c["name"].(string))
	}
	slices.Sort(granted)
	if want := []string{"$users", "public"}; !slices.Equal(granted, want) {
		t.Fatalf("get_token granted %v, want %v", granted, want)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		until := time.Now().Add(deadline)
		for !cond() {
			if time.Now().After(until) {
				t.Fatalf("the site's page did not get %s within %v (requests %v, subscribed %v, received %v)", what, deadline,
					eval[[]string](p, `requests`), eval[[]string](p, `subscribed`), eval[[]djangoMessage](p, `received`))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("both subscriptions", func() bool { return len(eval[[]string](p, `subscribed`)) == 2 })

	data := map[string]any{"order": 42.0, "items": []any{"a", "b"}}
	for _, ch := range browserChannels {
		body, err := json.Marshal(map[string]any{"message": "hello " + ch.Name, "data": data, "event_class": "important", "bucket": "orders", "site": "shop"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.js.Publish(t.Context(), "instant.publish."+ch.Name, body, jetstream.WithMsgID("dj-"+ch.Name)); err != nil {
			t.Fatal(err)
		}
	}
	// A marker on each granted channel: a channel's envelopes are relayed
	// in order, so once its marker is there, its earlier envelopes are too
	// (channels in different partitions are relayed concurrently, so one
	// marker says nothing about another channel).
	for _, ch := range []string{"public", "$users"} {
		s.publish(ch, "marker-"+ch, "marker")
	}
	var got []djangoMessage
	waitUntil("the markers", func() bool {
		got = eval[[]djangoMessage](p, `received`)
		markers := 0
		for _, m := range got {
			if m.Msg == "marker" {
				markers++
			}
		}
		return markers == 2
	})
	p.screenshot("received")
	var want []djangoMessage
	for _, ch := range []string{"public", "$users"} {
		want = append(want, djangoMessage{ChannelName: ch, Site: "shop", Msg: "hello " + ch, Data: data, EventClass: "important", Bucket: "orders"})
	}
	got = slices.DeleteFunc(got, func(m djangoMessage) bool { return m.Msg == "marker" })
	slices.SortFunc(got, func(a, b djangoMessage) int { return strings.Compare(b.ChannelName, a.ChannelName) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the client received\n%+v\nwant\n%+v", got, want)
	}

	// What the server saw: the client's own requests, from the site's
	// origin, JSON, and never a CSRF header.
	s.mu.Lock()
	posts := slices.Clone(s.posts)
	s.mu.Unlock()
	var seq []string
	for _, r := range posts {
		if r.origin != origin {
			continue // the demo page's own
		}
		seq = append(seq, r.path)
		if r.csrf || !strings.HasPrefix(r.contentType, "application/json") {
			t.Errorf("%s: X-CSRFToken %v, Content-Type %q; want none and JSON", r.path, r.csrf, r.contentType)
		}
		if r.path == auth.PathGetToken && len(seq) > 2 && !r.cookie {
			t.Errorf("get_token after login came without the session cookie")
		}
	}
	if want := []string{auth.PathGetToken, auth.PathLogin, auth.PathGetToken}; !slices.Equal(seq, want) {
		t.Errorf("the site's requests were %v, want %v", seq, want)
	}
	if got := eval[[]string](p, `requests`); !slices.Equal(got, []string{auth.PathGetToken + " 200"}) {
		t.Errorf("after the reload the page made the requests %v, want one get_token", got)
	}
}
