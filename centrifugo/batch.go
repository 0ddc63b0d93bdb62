package centrifugo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// DefaultMaxRequestBytes bounds the body of one publish request when
// Config.MaxRequestBytes is zero: 2 MiB.
const DefaultMaxRequestBytes = 2 << 20

// Per-publication overhead of a request body: the command's keys and
// punctuation, and the frame around the commands.
const (
	commandOverhead = len(`{"publish":{"channel":"","data":,"idempotency_key":""}},`)
	frameOverhead   = len(`{"commands":[]}`)
)

// ErrBadPublication is the Result.Err of a Publish that is not sent: its
// Data could reach beyond its place in the request (it is empty, its
// brackets or quotes do not balance, or it holds several values), or its
// Channel or IdempotencyKey is not valid UTF-8. It is permanent.
//
// The check of Data is structural, not a full JSON validation (which
// would cost more than the rest of the encoding): Data that passes it but
// is not valid JSON makes Centrifugo refuse the whole request (HTTP 400).
var ErrBadPublication = errors.New("centrifugo: publication data is not one JSON value, or its channel or idempotency key is not valid UTF-8")

// Publish is one publication to send.
type Publish struct {
	Channel string
	// Data is the publication data, already encoded as JSON (an object or
	// a string). It is sent as is, without a copy.
	Data []byte
	// IdempotencyKey, when not empty, is sent as Centrifugo's
	// idempotency_key: within Centrifugo's result cache window (5 minutes
	// in v6, per channel) a second publish with the same key on the same
	// channel is not applied again and returns the first one's offset and
	// epoch.
	IdempotencyKey string
}

// Result is Centrifugo's answer to one Publish: the publication's position
// in the channel's history (zero when the channel keeps none), or Err: an
// *APIError when Centrifugo refused that one publication, ErrBadPublication,
// or the error of the request that carried it (see Client.Publish).
type Result struct {
	Offset uint64
	Epoch  string
	Err    error
}

// Publish sends pubs to Centrifugo's POST <URL>/batch, in order, as
// publish commands applied one after another (not in parallel), each with
// its idempotency key. Publications whose encoded size would take a
// request over Config.MaxRequestBytes go into the next request; requests
// are sent one after another, each bounded by the timeout. A single
// publication larger than the bound goes alone in its own request.
//
// On a nil error it returns one Result per Publish, in the same order;
// with no pubs it sends nothing and returns (nil, nil).
//
// An error means that every publication failed the same way and none,
// some or all of them may have been published: a *StatusError for an HTTP
// status other than 200 (matching ErrUnauthorized for 401), an error
// wrapping gocent.ErrMalformedResponse for a reply that cannot be read,
// or the wrapped transport error, including ctx's. Temporary tells
// whether a retry may succeed. When pubs took several requests and one of
// them failed while others did not, Publish returns a nil error instead
// and the failure as the Err of the publications it concerns: those of a
// request that failed permanently (the requests after it are still sent),
// or, after a temporary failure, those of that request and of every later
// one, which are not sent, so that a retry keeps the order.
func (c *Client) Publish(ctx context.Context, pubs []Publish) ([]Result, error) {
	if len(pubs) == 0 {
		return nil, nil
	}
	results := make([]Result, len(pubs))
	for lo := 0; lo < len(pubs); {
		buf := bodyPool.get()
		body, hi, n := c.appendCommands((*buf)[:0], pubs, lo, results)
		*buf = body
		if n == 0 { // nothing sendable in pubs[lo:hi]
			bodyPool.put(buf)
			lo = hi
			continue
		}
		err := c.sendBatch(ctx, buf, results[lo:hi])
		switch {
		case err == nil:
		case lo == 0 && (hi == len(pubs) || Temporary(err)):
			return nil, err
		case Temporary(err):
			setErr(results[lo:], err)
			return results, nil
		default:
			setErr(results[lo:hi], err)
		}
		lo = hi
	}
	return results, nil
}

// setErr sets err as the Err of each result not already failed.
func setErr(results []Result, err error) {
	for i := range results {
		if results[i].Err == nil {
			results[i] = Result{Err: err}
		}
	}
}

// appendCommands appends the batch request for pubs[lo:hi] to dst, hi as
// far as MaxRequestBytes allows (at least lo+1), and returns it with hi
// and the number of commands in it. Publications that cannot be sent get
// ErrBadPublication in results and are left out of the body.
func (c *Client) appendCommands(dst []byte, pubs []Publish, lo int, results []Result) ([]byte, int, int) {
	dst = append(dst, `{"commands":[`...)
	start, sent := len(dst), 0
	hi := lo
	for ; hi < len(pubs); hi++ {
		p := &pubs[hi]
		size := commandOverhead + len(p.Channel) + len(p.Data) + len(p.IdempotencyKey)
		if sent > 0 && len(dst)+size+frameOverhead > c.maxBytes {
			break
		}
		if !confined(p.Data) {
			results[hi].Err = ErrBadPublication
			continue
		}
		mark := len(dst)
		if len(dst) > start {
			dst = append(dst, ',')
		}
		var ok bool
		dst = append(dst, `{"publish":{"channel":`...)
		if dst, ok = appendString(dst, p.Channel); !ok {
			dst, results[hi].Err = dst[:mark], ErrBadPublication
			continue
		}
		dst = append(dst, `,"data":`...)
		dst = append(dst, p.Data...)
		if p.IdempotencyKey != "" {
			dst = append(dst, `,"idempotency_key":`...)
			if dst, ok = appendString(dst, p.IdempotencyKey); !ok {
				dst, results[hi].Err = dst[:mark], ErrBadPublication
				continue
			}
		}
		dst = append(dst, `}}`...)
		sent++
	}
	return append(dst, `]}`...), hi, sent
}

// confined reports whether data, put in the place of a JSON value, stays
// there: it has something besides white space, its strings end, its
// brackets never close more than it opened and balance at its end, and
// it has no ',' or ':' outside them. A JSON decoder that reads the whole
// request then finds in data one value, or refuses the request.
func confined(data []byte) bool {
	depth, value := 0, false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			value = true
			end := stringEnd(data, i+1)
			if end < 0 {
				return false
			}
			i = end
		case '{', '[':
			depth++
			value = true
		case '}', ']':
			if depth--; depth < 0 {
				return false
			}
		case ',', ':':
			if depth == 0 {
				return false
			}
		case ' ', '\t', '\n', '\r':
		default:
			value = true
		}
	}
	return value && depth == 0
}

// stringEnd returns the index of the quote that ends the JSON string
// whose content starts at data[from], or -1: the first quote not preceded
// by an odd number of backslashes.
func stringEnd(data []byte, from int) int {
	for {
		q := bytes.IndexByte(data[from:], '"')
		if q < 0 {
			return -1
		}
		q += from
		n := 0
		for n < q-from && data[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q
		}
		from = q + 1
	}
}

// appendString appends s as a JSON string. It reports false, and appends
// garbage, when s is not valid UTF-8.
func appendString(dst []byte, s string) ([]byte, bool) {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < utf8.RuneSelf && s[i] != '"' && s[i] != '\\' {
		i++
	}
	if i == len(s) {
		return append(append(dst, s...), '"'), true
	}
	if !utf8.ValidString(s[i:]) {
		return dst, false
	}
	start := 0 // s[start:i] needs no escaping
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		if c == '"' || c == '\\' {
			dst = append(dst, '\\', c)
		} else {
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(append(dst, s[start:]...), '"'), true
}

// Pools of buffers: request bodies and replies, apart, since their sizes
// differ.
var (
	bodyPool  = bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}}
	replyPool = bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}}
)

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 8 << 20

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) get() *[]byte { return p.pool.Get().(*[]byte) }

func (p *bufferPool) put(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		p.pool.Put(b)
	}
}

// requestBody is a request body in a pooled buffer. The buffer returns to
// the pool once the transport closed the body and the reply was read in
// full (so the server had the whole body): whichever comes second.
type requestBody struct {
	bytes.Reader
	buf    *[]byte
	closed atomic.Bool
	done   atomic.Int32
}

func (r *requestBody) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.release()
	}
	return nil
}

// release counts one of the two events; sendBatch calls it once.
func (r *requestBody) release() {
	if r.done.Add(1) == 2 {
		bodyPool.put(r.buf)
	}
}

// sendBatch posts the request in buf and fills results with the replies
// (entries already failed have no command in the body). It takes buf
// over.
func (c *Client) sendBatch(ctx context.Context, buf *[]byte, results []Result) error {
	body := &requestBody{buf: buf}
	body.Reset(*buf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.batchURL, body)
	if err != nil {
		return fmt.Errorf("centrifugo: %w", err)
	}
	req.ContentLength = int64(len(*buf))
	if c.authHeader != nil {
		req.Header["Authorization"] = c.authHeader
	}
	req.Header["Content-Type"] = jsonContentType
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.requestError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		return &StatusError{Status: resp.StatusCode, Body: c.redact(b)}
	}
	rb := replyPool.get()
	defer replyPool.put(rb)
	if *rb, err = readAll(*rb, resp.Body, resp.ContentLength); err != nil {
		return c.requestError(err)
	}
	if err := decodeReplies(*rb, results); err != nil {
		return fmt.Errorf("centrifugo: batch reply: %w", err)
	}
	body.release()
	return nil
}

var jsonContentType = []string{"application/json"}

// readAll reads r to its end into buf, growing it once when the length is
// known.
func readAll(buf []byte, r io.Reader, length int64) ([]byte, error) {
	if length > 0 && int64(cap(buf)) < length+1 && length < maxPooled {
		buf = make([]byte, 0, length+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
