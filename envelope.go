package instant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"unicode/utf8"
)

// DefaultMaxPayload is the default size limit of an envelope body.
const DefaultMaxPayload = 64 << 10

// Envelope is what a producer publishes. Empty strings and a nil Data mean
// "not set".
type Envelope struct {
	Channel    string          `json:"channel"`
	Message    string          `json:"message"`
	Data       json.RawMessage `json:"data"`
	EventClass string          `json:"event_class"`
	Bucket     string          `json:"bucket"`
	Site       string          `json:"site"`
	Level      Level           `json:"level"`

	dataCompact bool // Data holds no blank outside strings
}

// ParseEnvelope decodes body, received on a subject whose suffix named
// subjectChannel ("" when the subject had none), into an envelope with its
// Channel set. A body whose first non-blank byte is not '{' is plain text
// and becomes the message. The whole body must be valid UTF-8, and a JSON
// body follows the strict JSON rule (see DecodeObject), in one pass
// without reflection. The envelope's Data aliases body. Errors wrap
// ErrTooLarge (body longer than maxPayload bytes) or ErrBadEnvelope.
func ParseEnvelope(subjectChannel string, body []byte, maxPayload int) (Envelope, error) {
	var e Envelope
	if len(body) > maxPayload {
		return e, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), maxPayload)
	}
	if !utf8.Valid(body) {
		return e, fmt.Errorf("%w: %w", ErrBadEnvelope, ErrNotUTF8)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return e, fmt.Errorf("%w: empty body", ErrBadEnvelope)
	case trimmed[0] == '{':
		if err := decodeEnvelope(body, &e); err != nil {
			return e, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
		}
	default:
		e.Message = string(body)
	}
	if bytes.Equal(e.Data, []byte("null")) {
		e.Data = nil
	}
	if e.Message == "" && e.Data == nil {
		return e, fmt.Errorf("%w: message or data is required", ErrBadEnvelope)
	}
	return e, e.resolveChannel(subjectChannel)
}

func (e *Envelope) resolveChannel(subjectChannel string) error {
	switch {
	case subjectChannel != "" && e.Channel != "" && e.Channel != subjectChannel:
		return fmt.Errorf("%w: channel %q in the body differs from %q in the subject", ErrBadEnvelope, e.Channel, subjectChannel)
	case subjectChannel != "":
		e.Channel = subjectChannel
	case e.Channel == "":
		return fmt.Errorf("%w: no channel: set \"channel\" or publish on <subject>.<channel>", ErrBadEnvelope)
	}
	if err := ValidChannelName(e.Channel); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEnvelope, err)
	}
	return nil
}

// Publication is the data browsers receive (Centrifugo publication data):
// django-instant's keys plus a stable id.
type Publication struct {
	ID         string          `json:"id"`
	Channel    string          `json:"channel"`
	Site       string          `json:"site"`
	Message    string          `json:"message,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	EventClass string          `json:"event_class,omitempty"`
	Bucket     string          `json:"bucket,omitempty"`

	dataCompact bool // Data is known to be valid, compact JSON
}

// PayloadEncoding says how a Publication is put into Centrifugo's
// publication data.
type PayloadEncoding string

// The payload encodings.
const (
	// EncodingObject sends the publication as a JSON object (the default).
	EncodingObject PayloadEncoding = "object"
	// EncodingString sends it as a JSON string holding the encoded object,
	// as the django-instant 4.x JavaScript client expects.
	EncodingString PayloadEncoding = "string"
)

// ParsePayloadEncoding returns the encoding named s.
func ParsePayloadEncoding(s string) (PayloadEncoding, error) {
	switch e := PayloadEncoding(s); e {
	case EncodingObject, EncodingString:
		return e, nil
	}
	return "", fmt.Errorf("invalid payload encoding %q (want object or string)", s)
}

// Publication returns what browsers receive for e, identified by id, with
// site used when e names none.
func (e *Envelope) Publication(id, site string) Publication {
	if e.Site != "" {
		site = e.Site
	}
	return Publication{
		ID: id, Channel: e.Channel, Site: site,
		Message: e.Message, Data: e.Data, EventClass: e.EventClass, Bucket: e.Bucket,
		dataCompact: e.dataCompact,
	}
}

// Encode returns p as Centrifugo publication data in encoding enc. Nothing
// is HTML-escaped ('<' stays '<'), so the data is not larger than needed;
// otherwise the output is what encoding/json gives with SetEscapeHTML(false).
// It fails only when p.Data is not valid JSON.
func (p Publication) Encode(enc PayloadEncoding) ([]byte, error) {
	// 96: the keys, quotes and commas of every field.
	size := 96 + len(p.ID) + len(p.Channel) + len(p.Site) + len(p.Message) + len(p.Data) + len(p.EventClass) + len(p.Bucket)
	if enc != EncodingString {
		return p.appendObject(make([]byte, 0, size))
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	obj, err := p.appendObject((*bp)[:0])
	if cap(obj) <= 1<<20 {
		*bp = obj
	}
	if err != nil {
		return nil, err
	}
	return appendJSONString(make([]byte, 0, len(obj)+len(obj)/8+2), obj), nil
}

var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (p Publication) appendObject(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.ID)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, p.Channel)
	b = append(b, `,"site":`...)
	b = appendJSONString(b, p.Site)
	if p.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, p.Message)
	}
	if len(p.Data) > 0 {
		b = append(b, `,"data":`...)
		if p.dataCompact {
			b = append(b, p.Data...)
		} else {
			buf := bytes.NewBuffer(b)
			if err := json.Compact(buf, p.Data); err != nil {
				return b, fmt.Errorf("data: %w", err)
			}
			b = buf.Bytes()
		}
	}
	if p.EventClass != "" {
		b = append(b, `,"event_class":`...)
		b = appendJSONString(b, p.EventClass)
	}
	if p.Bucket != "" {
		b = append(b, `,"bucket":`...)
		b = appendJSONString(b, p.Bucket)
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// without HTML escaping: control characters, '"' and '\\' escaped,
// U+2028 and U+2029 as \u escapes, invalid UTF-8 as \ufffd.
func appendJSONString[S []byte | string](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
