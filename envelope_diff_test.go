package instant_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/instanthq/instant"
)

// referenceParseEnvelope is ParseEnvelope as it was before its single-pass
// decoder: encoding/json (instant.DecodeObject) under the same strict
// rule. FuzzEnvelopeDecoders holds the two to identical outcomes.
func referenceParseEnvelope(subjectChannel string, body []byte, maxPayload int) (instant.Envelope, error) {
	var e instant.Envelope
	if len(body) > maxPayload {
		return e, fmt.Errorf("%w: %d bytes, limit %d", instant.ErrTooLarge, len(body), maxPayload)
	}
	if !utf8.Valid(body) {
		return e, fmt.Errorf("%w: %w", instant.ErrBadEnvelope, instant.ErrNotUTF8)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return e, fmt.Errorf("%w: empty body", instant.ErrBadEnvelope)
	case trimmed[0] == '{':
		if err := instant.DecodeObject(body, &e, false); err != nil {
			return e, fmt.Errorf("%w: %w", instant.ErrBadEnvelope, err)
		}
	default:
		e.Message = string(body)
	}
	if bytes.Equal(e.Data, []byte("null")) {
		e.Data = nil
	}
	if e.Message == "" && e.Data == nil {
		return e, fmt.Errorf("%w: message or data is required", instant.ErrBadEnvelope)
	}
	switch {
	case subjectChannel != "" && e.Channel != "" && e.Channel != subjectChannel:
		return e, fmt.Errorf("%w: channel differs", instant.ErrBadEnvelope)
	case subjectChannel != "":
		e.Channel = subjectChannel
	case e.Channel == "":
		return e, fmt.Errorf("%w: no channel", instant.ErrBadEnvelope)
	}
	if err := instant.ValidChannelName(e.Channel); err != nil {
		return e, fmt.Errorf("%w: %v", instant.ErrBadEnvelope, err)
	}
	return e, nil
}

// compareDecoders fails t unless both decoders give the same outcome for
// body and, when they accept it, the same envelope and publication.
func compareDecoders(t *testing.T, subject string, body []byte, limit int) {
	t.Helper()
	got, err := instant.ParseEnvelope(subject, body, limit)
	want, wantErr := referenceParseEnvelope(subject, body, limit)
	if (err == nil) != (wantErr == nil) || instant.CodeOf(err) != instant.CodeOf(wantErr) {
		t.Fatalf("subject %q body %q:\n got error %v\nwant error %v", subject, body, err, wantErr)
	}
	if err != nil {
		return
	}
	if got.Channel != want.Channel || got.Message != want.Message || !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) ||
		got.EventClass != want.EventClass || got.Bucket != want.Bucket || got.Site != want.Site || got.Level != want.Level {
		t.Fatalf("subject %q body %q:\n got %+v\nwant %+v", subject, body, got, want)
	}
	for _, enc := range []instant.PayloadEncoding{instant.EncodingObject, instant.EncodingString} {
		gotPub, err := got.Publication("i", "s").Encode(enc)
		if err != nil {
			t.Fatal(err)
		}
		wantPub, err := referenceEncode(want.Publication("i", "s"), enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotPub, wantPub) {
			t.Fatalf("body %q, %s:\n got %s\nwant %s", body, enc, gotPub, wantPub)
		}
	}
}

// FuzzEnvelopeDecoders is the differential test of the single-pass
// envelope decoder against encoding/json under the same rule. Its corpus
// (testdata/fuzz/FuzzEnvelopeDecoders) and the seeds below cover invalid
// UTF-8, duplicate and case-variant keys, escapes and deep nesting.
func FuzzEnvelopeDecoders(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add("public", []byte(s))
		f.Add("", []byte(s))
	}
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		compareDecoders(t, subject, body, 4096)
	})
}

var decoderSeeds = []string{
	"hi", " ", "", `{}`, `{"message":"m"}`, `{"channel":"$users","data":[1,{"a":null}]}`, `{"data":null}`,
	`{"message":"m","level":"staff","site":"s","bucket":"b","event_class":"e"}`, "\xff", " {", `{"message":"m"}x`,
	`{"message":"m"} `, `{"message":"m"} {}`, `{"message":"m",}`, `{,"message":"m"}`, `{"message" : "m" , "data" : { "a" : [ 1 , 2 ] } }`,
	// invalid UTF-8
	"{\"message\":\"\xff\"}", "{\"data\":{\"k\":\"\xc3\"}}", "{\"data\":\"\xed\xa0\x80\"}", "{\"message\":\"m\"}\xff", "{\"m\xffessage\":\"m\"}",
	// duplicate keys
	`{"channel":"public","channel":"$staff","message":"m"}`, `{"message":"m","message":null}`, `{"data":1,"data":1}`,
	`{"channel":"public","\u0063hannel":"$staff","message":"m"}`, `{"data":{"a":1,"a":2}}`,
	// case variants
	`{"Channel":"$staff","message":"m"}`, `{"MESSAGE":"m"}`, `{"message":"m","\u017fite":"s"}`, `{"message":"m","\u212aevel":"users"}`,
	`{"Data":1}`, `{"event_Class":"e","message":"m"}`,
	// escapes
	`{"message":"\u003c\u0026\u003e\u2028\u2029"}`, `{"message":"\ud83d\ude00 \ud800 \udc00\ud800 \ud800\u0041"}`, `{"message":"\"\\\/\b\f\n\r\t"}`,
	`{"message":"\x"}`, `{"message":"\u12"}`, `{"message":"\u12G4"}`, `{"level":"\u0075sers","message":"m"}`, `{"message":"` + "\x01" + `"}`,
	// escape amplification
	`{"message":"` + strings.Repeat("<>&", 300) + `","data":"` + strings.Repeat(`\"`, 300) + `"}`,
	strings.Repeat("<", 1000), strings.Repeat(`"`, 1000), strings.Repeat("\u2028", 300),
	// numbers and literals
	`{"data":-0.5e+10}`, `{"data":01}`, `{"data":1.}`, `{"data":.5}`, `{"data":-}`, `{"data":1e}`, `{"data":+1}`, `{"data":tru}`, `{"data":nullx}`,
	`{"data":true,"message":null}`, `{"message":5}`, `{"message":["m"]}`, `{"level":null,"message":"m"}`, `{"level":5,"message":"m"}`,
	// nesting
	`{"data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `{"data":[[[}`, `{"data":{"a":[1,{"b":{}}],"c":[]}}`, `{"data":{"a"}}`,
	`{"data":{"a":1,}}`, `{"data":[1,]}`, `{"data":{1:2}}`,
}

// TestEnvelopeDecodersAgree runs the seeds and the nesting limit, which
// needs bodies larger than the fuzz target's.
func TestEnvelopeDecodersAgree(t *testing.T) {
	for _, s := range decoderSeeds {
		compareDecoders(t, "public", []byte(s), 4096)
		compareDecoders(t, "", []byte(s), 4096)
	}
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		body := `{"data":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
		compareDecoders(t, "public", []byte(body), 1<<20)
		body = `{"data":` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + `}`
		compareDecoders(t, "public", []byte(body), 1<<20)
	}
	_, err := instant.ParseEnvelope("public", []byte(`{"data":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), 1<<20)
	if !errors.Is(err, instant.ErrBadEnvelope) {
		t.Errorf("data nested 10000 deep: %v, want bad_envelope", err)
	}
}
