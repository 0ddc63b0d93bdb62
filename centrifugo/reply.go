package centrifugo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/centrifugal/gocent/v3"
)

// decodeReplies reads Centrifugo's reply to a batch request,
// {"replies":[{"publish":{"offset":N,"epoch":"…"}} or {"error":{"code":N,
// "message":"…"}}, …]}, one reply per command in order, into the entries
// of results whose Err is nil (the others sent no command). Unknown keys
// are skipped. It allocates only errors and each distinct epoch (one per
// channel) once, for the first maxEpochs of them.
func decodeReplies(data []byte, results []Result) error {
	d := decoder{data: data}
	next := 0 // index in results of the next reply
	var epochArr [maxEpochs]string
	epochs := epochArr[:0] // distinct epochs seen, to share their strings
	err := d.object(func(key []byte) error {
		if string(key) != "replies" {
			return d.skip()
		}
		return d.array(func() error {
			for next < len(results) && results[next].Err != nil {
				next++
			}
			if next == len(results) {
				return errors.New("more replies than commands")
			}
			r := &results[next]
			next++
			return d.object(func(key []byte) error {
				switch string(key) {
				case "publish":
					return d.object(func(key []byte) error {
						var err error
						switch string(key) {
						case "offset":
							r.Offset, err = d.uint()
						case "epoch":
							var s []byte
							if s, err = d.str(); err == nil {
								r.Epoch, epochs = intern(epochs, s)
							}
						default:
							err = d.skip()
						}
						return err
					})
				case "error":
					e := &APIError{}
					r.Err = e
					return d.object(func(key []byte) error {
						switch string(key) {
						case "code":
							n, err := d.uint()
							e.Code = int(n)
							return err
						case "message":
							s, err := d.str()
							e.Message = string(s)
							return err
						}
						return d.skip()
					})
				}
				return d.skip()
			})
		})
	})
	if err == nil {
		d.ws()
		if d.pos != len(d.data) {
			err = d.errorf("data after the reply")
		}
	}
	for ; err == nil && next < len(results); next++ {
		if results[next].Err == nil {
			err = errors.New("fewer replies than commands")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", gocent.ErrMalformedResponse, err)
	}
	return nil
}

// maxEpochs is how many distinct epochs decodeReplies shares.
const maxEpochs = 16

// intern returns s as a string, the one in seen if there is one, and seen
// with it added while there is room.
func intern(seen []string, s []byte) (string, []string) {
	for _, e := range seen {
		if e == string(s) {
			return e, seen
		}
	}
	e := string(s)
	if len(seen) < cap(seen) {
		seen = append(seen, e)
	}
	return e, seen
}

// decoder reads the JSON of a batch reply. It checks what it reads and
// skips the rest with a lighter check (brackets balance, strings end).
type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.pos == len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

func (d *decoder) consume(c byte) bool {
	if d.peek() == c {
		d.pos++
		return true
	}
	return false
}

// object reads an object, calling member with each key to read its value;
// null is an empty object.
func (d *decoder) object(member func(key []byte) error) error {
	if d.literal("null") {
		return nil
	}
	if !d.consume('{') {
		return d.errorf("want an object")
	}
	if d.consume('}') {
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		if !d.consume(':') {
			return d.errorf("want ':'")
		}
		if err := member(key); err != nil {
			return err
		}
		if d.consume('}') {
			return nil
		}
		if !d.consume(',') {
			return d.errorf("want ',' or '}'")
		}
	}
}

// array reads an array, calling elem to read each element.
func (d *decoder) array(elem func() error) error {
	if !d.consume('[') {
		return d.errorf("want an array")
	}
	if d.consume(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if d.consume(']') {
			return nil
		}
		if !d.consume(',') {
			return d.errorf("want ',' or ']'")
		}
	}
}

// str reads a string. Without escapes the result points into the data;
// with them, or with bytes that are not UTF-8 (each becomes U+FFFD, as
// encoding/json does), it is a new copy.
func (d *decoder) str() ([]byte, error) {
	if !d.consume('"') {
		return nil, d.errorf("want a string")
	}
	start, escaped := d.pos, false
	for ; d.pos < len(d.data); d.pos++ {
		switch c := d.data[d.pos]; {
		case c == '\\':
			escaped = true
			d.pos++
		case c == '"':
			raw := d.data[start:d.pos]
			d.pos++
			if !escaped && utf8.Valid(raw) {
				return raw, nil
			}
			var s string
			if err := json.Unmarshal(d.data[start-1:d.pos], &s); err != nil {
				return nil, err
			}
			return []byte(s), nil
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		}
	}
	return nil, d.errorf("unterminated string")
}

// uint reads a non-negative integer.
func (d *decoder) uint() (uint64, error) {
	d.ws()
	start := d.pos
	var n uint64
	for ; d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9'; d.pos++ {
		digit := uint64(d.data[d.pos] - '0')
		if n > (math.MaxUint64-digit)/10 {
			return 0, d.errorf("integer overflows 64 bits")
		}
		n = n*10 + digit
	}
	if d.pos == start || (d.data[start] == '0' && d.pos-start > 1) {
		return 0, d.errorf("want a non-negative integer")
	}
	return n, nil
}

// literal consumes word if it comes next.
func (d *decoder) literal(word string) bool {
	d.ws()
	if bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		d.pos += len(word)
		return true
	}
	return false
}

// skip reads any value without keeping it.
func (d *decoder) skip() error {
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip() })
	case c == '[':
		return d.array(d.skip)
	case c == '"':
		_, err := d.str()
		return err
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := d.pos
		for d.pos < len(d.data) && bytes.IndexByte([]byte("+-.eE0123456789"), d.data[d.pos]) >= 0 {
			d.pos++
		}
		if !json.Valid(d.data[start:d.pos]) {
			return d.errorf("bad number")
		}
		return nil
	}
	return d.errorf("want a value")
}
