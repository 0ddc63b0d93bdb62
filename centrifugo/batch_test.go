package centrifugo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/centrifugal/gocent/v3"
)

// TestPublishMixedReplies maps one batch reply with successes, temporary
// and permanent refusals to the right result per publication.
func TestPublishMixedReplies(t *testing.T) {
	f := &fake{reply: publishReply}
	chans := []string{"ok", "err:100", "err:102", "ok", "err:111", "err:107", "err:104", "ok"}
	pubs := make([]Publish, len(chans))
	for i, ch := range chans {
		pubs[i] = Publish{Channel: ch, Data: []byte(`{}`), IdempotencyKey: fmt.Sprint(i)}
	}
	results, err := serve(t, f).Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, r := range results {
		var code int
		if _, err := fmt.Sscanf(chans[i], "err:%d", &code); err != nil {
			if r.Err != nil || r.Offset != uint64(i+1) || r.Epoch != "ep" {
				t.Errorf("result %d: got %+v, want offset %d epoch ep", i, r, i+1)
			}
			continue
		}
		e, ok := errors.AsType[*APIError](r.Err)
		if !ok || e.Code != code {
			t.Errorf("result %d: got %v, want *APIError %d", i, r.Err, code)
			continue
		}
		if got, want := Temporary(r.Err), code == 100 || code == 111; got != want {
			t.Errorf("result %d: Temporary: got %v, want %v", i, got, want)
		}
	}
}

// pubsOf returns n publications of about size bytes of data each, on
// channels c0, c1, c2, with keys k0, k1, ….
func pubsOf(n, size int) []Publish {
	pubs := make([]Publish, n)
	for i := range pubs {
		pubs[i] = Publish{
			Channel:        fmt.Sprintf("c%d", i%3),
			Data:           fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, strings.Repeat("x", size)),
			IdempotencyKey: fmt.Sprintf("k%d", i),
		}
	}
	return pubs
}

// seqReply answers publish commands with their data's "i" plus one as
// offset, so results can be checked across requests.
func seqReply(_ int, cmd command) string {
	var d struct{ I int }
	if err := json.Unmarshal(cmd.Params.Data, &d); err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"publish":{"offset":%d,"epoch":"ep"}}`, d.I+1)
}

func TestPublishSplitsByBytes(t *testing.T) {
	const max = 1000
	f := &fake{reply: seqReply}
	srv := serveFake(t, f)
	c := New(Config{URL: srv + "/api", Key: testKey, MaxRequestBytes: max})
	pubs := pubsOf(40, 100) // about 150 bytes per command
	pubs[17].Data = fmt.Appendf(nil, `{"i":17,"pad":%q}`, strings.Repeat("y", 2*max))
	results, err := c.Publish(t.Context(), pubs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for i, r := range results {
		if r.Err != nil || r.Offset != uint64(i+1) {
			t.Errorf("result %d: got %+v, want offset %d", i, r, i+1)
		}
	}
	f.sizes.Lock()
	sizes := f.bodies
	f.sizes.Unlock()
	if len(sizes) < 40*150/max {
		t.Errorf("got %d requests (%v), want at least %d", len(sizes), sizes, 40*150/max)
	}
	big := 0
	for _, n := range sizes {
		if n > max {
			big++
		}
	}
	if big != 1 {
		t.Errorf("got %d requests over %d bytes (%v), want 1: the one publication larger than that", big, max, sizes)
	}
}

// serveFake starts f and returns its URL.
func serveFake(t *testing.T, h http.Handler) string {
	t.Helper()
	c := serve(t, h)
	return strings.TrimSuffix(c.batchURL, "/api/batch")
}

// TestPublishSplitFailures: when one of several requests fails, the
// publications it carried (and, after a temporary failure, those of later
// requests) get the error; the others their results.
func TestPublishSplitFailures(t *testing.T) {
	tests := []struct {
		name      string
		status    int // of the second request
		temporary bool
	}{
		{"temporary", http.StatusServiceUnavailable, true},
		{"permanent", http.StatusRequestEntityTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{reply: seqReply}
			var n atomic.Int32
			srv := serveFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 2 {
					http.Error(w, "no", tt.status)
					return
				}
				f.ServeHTTP(w, r)
			}))
			c := New(Config{URL: srv + "/api", Key: testKey, MaxRequestBytes: 1000})
			pubs := pubsOf(30, 100)
			results, err := c.Publish(t.Context(), pubs)
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			// Find the publications of the second request: the first
			// failed result up to the next success.
			first := -1
			for i, r := range results {
				if r.Err != nil {
					first = i
					break
				}
			}
			if first <= 0 {
				t.Fatalf("got results %+v, want the first request to succeed and a later one to fail", results)
			}
			failed := 0
			for i, r := range results[first:] {
				if r.Err == nil {
					if tt.temporary {
						t.Errorf("result %d: got %+v after a temporary failure, want the error", first+i, r)
					}
					continue
				}
				failed++
				if se, ok := errors.AsType[*StatusError](r.Err); !ok || se.Status != tt.status || Temporary(r.Err) != tt.temporary {
					t.Errorf("result %d: got %v, want a *StatusError %d", first+i, r.Err, tt.status)
				}
			}
			if !tt.temporary && first+failed == len(results) {
				t.Errorf("the requests after the permanent failure were not sent")
			}
			if got := int(n.Load()); tt.temporary && got != 2 {
				t.Errorf("got %d requests, want 2: nothing after the temporary failure", got)
			}
		})
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x01\x1f\n\t\r", "é ü €", "\u2028\u2029", "<>&", "mixé\"d\x7f"} {
		got, ok := appendString([]byte("x"), s)
		want, _ := json.Marshal(s)
		var back string
		if !ok || json.Unmarshal(got[1:], &back) != nil || back != s || string(got[:1]) != "x" {
			t.Errorf("appendString(%q) = %s, %v; want a JSON string decoding to it (json.Marshal: %s)", s, got, ok, want)
		}
	}
	for _, s := range []string{"\xff", "ok\xc3", "\xed\xa0\x80"} {
		if _, ok := appendString(nil, s); ok {
			t.Errorf("appendString(%q): got ok, want not valid UTF-8", s)
		}
	}
}

// stdReplies decodes a batch reply for n commands with encoding/json,
// matching keys exactly as Centrifugo writes them (encoding/json alone
// would also take "Publish" for "publish"). comparable is false when the
// reply has an object with a repeated key (encoding/json keeps the last,
// decodeReplies reads each).
func stdReplies(data []byte, n int) (out []Result, comparable bool, err error) {
	if hasRepeatedKey(data) {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, true, err
	}
	if dec.More() {
		return nil, true, errors.New("data after the reply")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, true, errors.New("data after the reply")
	}
	obj := func(v any) (map[string]any, error) {
		switch v := v.(type) {
		case nil:
			return map[string]any{}, nil
		case map[string]any:
			return v, nil
		}
		return nil, errors.New("not an object")
	}
	uintOf := func(v any) (uint64, error) {
		num, ok := v.(json.Number)
		if !ok {
			return 0, errors.New("not a number")
		}
		return strconv.ParseUint(num.String(), 10, 64)
	}
	m, err := obj(top)
	if err != nil {
		return nil, true, err
	}
	replies, ok := m["replies"].([]any)
	if !ok || len(replies) != n {
		return nil, true, errors.New("replies")
	}
	out = make([]Result, n)
	for i, r := range replies {
		rm, err := obj(r)
		if err != nil {
			return nil, true, err
		}
		if p, ok := rm["publish"]; ok {
			pm, err := obj(p)
			if err != nil {
				return nil, true, err
			}
			if v, ok := pm["offset"]; ok {
				if out[i].Offset, err = uintOf(v); err != nil {
					return nil, true, err
				}
			}
			if v, ok := pm["epoch"]; ok {
				if out[i].Epoch, ok = v.(string); !ok {
					return nil, true, errors.New("epoch")
				}
			}
		}
		if e, ok := rm["error"]; ok {
			em, err := obj(e)
			if err != nil {
				return nil, true, err
			}
			apiErr := &APIError{}
			if v, ok := em["code"]; ok {
				code, err := uintOf(v)
				if err != nil {
					return nil, true, err
				}
				apiErr.Code = int(code)
			}
			if v, ok := em["message"]; ok {
				if apiErr.Message, ok = v.(string); !ok {
					return nil, true, errors.New("message")
				}
			}
			out[i].Err = apiErr
		}
	}
	return out, true, nil
}

// hasRepeatedKey reports whether an object in data (valid JSON or not)
// has a key twice.
func hasRepeatedKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next string token is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := len(stack) - 1
		switch tok {
		case json.Delim('{'):
			if top >= 0 && stack[top].object {
				stack[top].key = true
			}
			stack = append(stack, frame{keys: map[string]bool{}, object: true, key: true})
			continue
		case json.Delim('['):
			if top >= 0 && stack[top].object {
				stack[top].key = true
			}
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			continue
		}
		if top < 0 || !stack[top].object {
			continue
		}
		if stack[top].key {
			k, _ := tok.(string)
			if stack[top].keys[k] {
				return true
			}
			stack[top].keys[k] = true
			stack[top].key = false
			continue
		}
		stack[top].key = true // a value: a key comes next
	}
}

var replySeeds = []string{
	`{"replies":[{"publish":{"offset":1,"epoch":"ab"}},{"error":{"code":102,"message":"unknown channel"}},{"publish":{}}]}`,
	` { "replies" : [ { "publish" : { "epoch" : "x\u00e9\"" , "offset" : 18446744073709551615 , "extra":[1,{"a":null}] } } , {"error":{"message":"m\n","code":100}}, {"publish":null} ] , "other": -1.5e3 } `,
	`{"other":{"replies":[]},"replies":[{"publish":{"offset":2}},{"publish":{"offset":3,"epoch":""}},{"error":{"code":107}}]}`,
	`{"replies":[{"publish":{"offset":01}},{},{}]}`,
	`{"replies":[{"publish":{"offset":-1}},{},{}]}`,
	`{"replies":[{"publish":{"offset":1.5}},{},{}]}`,
	`{"replies":[{},{},{}]} x`,
	`{"replies":[{},{}]}`,
	`{"replies":[{},{},{},{}]}`,
	`{"replies":[{"publish":{"offset":18446744073709551616}},{},{}]}`,
	`{"replies":[{"publish":{"epoch":"\x01"}},{},{}]}`,
	`{"replies":[{"error":{"code":100,"message":"unterminated}},{},{}]}`,
	`[1,2]`, ``, `null`, `{"replies":null}`,
}

func TestDecodeReplies(t *testing.T) {
	for _, seed := range replySeeds {
		checkDecode(t, []byte(seed))
	}
}

func FuzzDecodeReplies(f *testing.F) {
	for _, seed := range replySeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkDecode)
}

// checkDecode compares decodeReplies with encoding/json on data, for
// three commands: where encoding/json reads data, decodeReplies must read
// the same; where it refuses data, decodeReplies may accept only what
// still holds three publish replies (it skips less strictly).
func checkDecode(t *testing.T, data []byte) {
	got := make([]Result, 3)
	err := decodeReplies(data, got)
	want, comparable, stdErr := stdReplies(data, 3)
	if err != nil && !errors.Is(err, gocent.ErrMalformedResponse) {
		t.Errorf("%s: got %v, want an error matching ErrMalformedResponse", data, err)
	}
	if !comparable {
		return
	}
	if err != nil {
		if stdErr == nil {
			t.Errorf("%s: got %v, encoding/json reads %+v", data, err, want)
		}
		return
	}
	if stdErr != nil {
		if !json.Valid(data) {
			return // the skipping of unknown values is lighter
		}
		t.Errorf("%s: decoded %+v, encoding/json refuses: %v", data, got, stdErr)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		ge, _ := g.Err.(*APIError)
		we, _ := w.Err.(*APIError)
		if g.Offset != w.Offset || g.Epoch != w.Epoch || (ge == nil) != (we == nil) || (ge != nil && *ge != *we) {
			t.Errorf("%s: reply %d: got %+v (%v), want %+v (%v)", data, i, g, g.Err, w, w.Err)
		}
	}
}

func TestDecodeRepliesSkipsFailed(t *testing.T) {
	results := []Result{{}, {Err: ErrBadPublication}, {}}
	if err := decodeReplies([]byte(`{"replies":[{"publish":{"offset":1}},{"publish":{"offset":2}}]}`), results); err != nil {
		t.Fatal(err)
	}
	if results[0].Offset != 1 || results[1].Err != ErrBadPublication || results[2].Offset != 2 {
		t.Errorf("got %+v, want offsets 1 and 2 around the failed one", results)
	}
}

// BenchmarkEncodeDecode is the work of Publish on this side for a batch
// of 500 publications of ~250 bytes, without the HTTP round trip.
func BenchmarkEncodeDecode(b *testing.B) {
	c := New(Config{URL: "http://127.0.0.1/api"})
	pubs := pubsOf(500, 200)
	var reply strings.Builder
	reply.WriteString(`{"replies":[`)
	for i := range pubs {
		if i > 0 {
			reply.WriteByte(',')
		}
		fmt.Fprintf(&reply, `{"publish":{"offset":%d,"epoch":"Wzv%d"}}`, i+1, i%10) // 10 channels
	}
	reply.WriteString(`]}`)
	data := []byte(reply.String())
	results := make([]Result, len(pubs))
	b.ReportAllocs()
	for b.Loop() {
		buf := bodyPool.get()
		body, hi, _ := c.appendCommands((*buf)[:0], pubs, 0, results)
		if hi != len(pubs) {
			b.Fatal("split")
		}
		*buf = body
		bodyPool.put(buf)
		clear(results)
		if err := decodeReplies(data, results); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pubs)), "ns/publication")
}

// BenchmarkPublish is Publish of 500 publications of ~250 bytes to a
// local HTTP server answering a canned reply: the cost on this side of
// one batch, HTTP included.
func BenchmarkPublish(b *testing.B) {
	pubs := pubsOf(500, 200)
	var reply strings.Builder
	reply.WriteString(`{"replies":[`)
	for i := range pubs {
		if i > 0 {
			reply.WriteByte(',')
		}
		fmt.Fprintf(&reply, `{"publish":{"offset":%d,"epoch":"Wzv%d"}}`, i+1, i%10)
	}
	reply.WriteString(`]}`)
	canned := []byte(reply.String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(canned)
	}))
	b.Cleanup(srv.Close)
	c := New(Config{URL: srv.URL + "/api", Key: testKey})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Publish(b.Context(), pubs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pubs)), "ns/publication")
}

// FuzzAppendCommands checks that no publication data can change the
// commands of a request: the body either is refused by a JSON decoder as
// a whole, or holds exactly the publications sent, each with its own
// channel, data and key.
func FuzzAppendCommands(f *testing.F) {
	for _, seed := range []string{
		`{"n":1}`, `"str"`, `1}},{"publish":{"channel":"$staff","data":2`, `[}},{"publish":{"channel":"x","data":[`,
		`"a\"},{\"b"`, `"\\"`, `{"a":"}"}`, `1 2`, `{} {}`, `{"a":1]`, ``, ` `, `null`, `{"a":"\u0022"}`,
	} {
		f.Add([]byte(seed), "chan", "key")
	}
	f.Fuzz(func(t *testing.T, data []byte, channel, key string) {
		c := New(Config{URL: "http://127.0.0.1/api"})
		pubs := []Publish{
			{Channel: "before", Data: []byte(`{"n":0}`), IdempotencyKey: "k0"},
			{Channel: channel, Data: data, IdempotencyKey: key},
			{Channel: "after", Data: []byte(`{"n":2}`), IdempotencyKey: "k2"},
		}
		results := make([]Result, len(pubs))
		body, hi, n := c.appendCommands(nil, pubs, 0, results)
		if hi != len(pubs) {
			t.Fatalf("split a small batch: hi %d", hi)
		}
		var req struct {
			Commands []struct {
				Publish struct {
					Channel        string          `json:"channel"`
					Data           json.RawMessage `json:"data"`
					IdempotencyKey string          `json:"idempotency_key"`
				} `json:"publish"`
			} `json:"commands"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			if results[1].Err != nil {
				t.Fatalf("body without the bad publication is not JSON: %v\n%s", err, body)
			}
			return // refused as a whole
		}
		if len(req.Commands) != n {
			t.Fatalf("%d commands decoded, %d sent:\n%s", len(req.Commands), n, body)
		}
		var sent []Publish
		for i, p := range pubs {
			if results[i].Err == nil {
				sent = append(sent, p)
			}
		}
		for i, cmd := range req.Commands {
			p := cmd.Publish
			if p.Channel != sent[i].Channel || p.IdempotencyKey != sent[i].IdempotencyKey || !bytes.Equal(bytes.TrimSpace(p.Data), bytes.TrimSpace(sent[i].Data)) {
				t.Fatalf("command %d decodes to %q %s %q, sent %q %s %q", i, p.Channel, p.Data, p.IdempotencyKey, sent[i].Channel, sent[i].Data, sent[i].IdempotencyKey)
			}
		}
	})
}
