package instant

import (
	"bytes"
	"encoding/json"
	"fmt"
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
}

// ParseEnvelope decodes body, received on a subject whose suffix named
// subjectChannel ("" when the subject had none), into an envelope with its
// Channel set. A body whose first non-blank byte is not '{' is plain text
// and becomes the message. Errors wrap ErrTooLarge (body longer than
// maxPayload bytes) or ErrBadEnvelope.
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
		if err := DecodeObject(body, &e, false); err != nil {
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
	}
}

// Encode returns p as Centrifugo publication data in encoding enc.
func (p Publication) Encode(enc PayloadEncoding) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil || enc != EncodingString {
		return b, err
	}
	return json.Marshal(string(b))
}
