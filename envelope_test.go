package instant_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/instanthq/instant"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		subject string // channel named by the subject suffix
		body    string
		want    instant.Envelope
		wantErr error
	}{
		{name: "plain text", subject: "public", body: "Message for everyone",
			want: instant.Envelope{Channel: "public", Message: "Message for everyone"}},
		{name: "plain text keeps blanks", subject: "public", body: "  hi \n",
			want: instant.Envelope{Channel: "public", Message: "  hi \n"}},
		{name: "full envelope", body: `{"channel":"$users","message":"m","data":{"a":[1,2]},"event_class":"important","bucket":"b","site":"s","level":"users"}`,
			want: instant.Envelope{Channel: "$users", Message: "m", Data: []byte(`{"a":[1,2]}`), EventClass: "important", Bucket: "b", Site: "s", Level: instant.LevelUsers}},
		{name: "data only", subject: "public", body: ` {"data":42}`,
			want: instant.Envelope{Channel: "public", Data: []byte(`42`)}},
		{name: "same channel twice", subject: "public", body: `{"channel":"public","message":"m"}`,
			want: instant.Envelope{Channel: "public", Message: "m"}},
		{name: "channel differs", subject: "public", body: `{"channel":"other","message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "no channel", body: `{"message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "plain text without channel", body: "hi", wantErr: instant.ErrBadEnvelope},
		{name: "unknown field", subject: "public", body: `{"mesage":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "wrong type", subject: "public", body: `{"message":5}`, wantErr: instant.ErrBadEnvelope},
		{name: "bad level", subject: "public", body: `{"message":"m","level":"root"}`, wantErr: instant.ErrBadEnvelope},
		{name: "trailing data", subject: "public", body: `{"message":"m"} {}`, wantErr: instant.ErrBadEnvelope},
		{name: "broken JSON", subject: "public", body: `{"message":`, wantErr: instant.ErrBadEnvelope},
		{name: "neither message nor data", subject: "public", body: `{"event_class":"x"}`, wantErr: instant.ErrBadEnvelope},
		{name: "null data", subject: "public", body: `{"data":null}`, wantErr: instant.ErrBadEnvelope},
		{name: "empty body", subject: "public", body: "", wantErr: instant.ErrBadEnvelope},
		{name: "blank body", subject: "public", body: " \n", wantErr: instant.ErrBadEnvelope},
		{name: "invalid UTF-8", subject: "public", body: "\xff\xfe", wantErr: instant.ErrBadEnvelope},
		{name: "invalid UTF-8 in data", subject: "public", body: "{\"data\":{\"k\":\"\xff\"}}", wantErr: instant.ErrBadEnvelope},
		{name: "invalid UTF-8 in message", subject: "public", body: "{\"message\":\"a\xc3\"}", wantErr: instant.ErrBadEnvelope},
		{name: "invalid UTF-8 after the object", subject: "public", body: "{\"message\":\"a\"}\xff", wantErr: instant.ErrBadEnvelope},
		{name: "surrogate half in UTF-8", subject: "public", body: "{\"message\":\"\xed\xa0\x80\"}", wantErr: instant.ErrBadEnvelope},
		{name: "escaped surrogate half", subject: "public", body: `{"message":"\ud800"}`,
			want: instant.Envelope{Channel: "public", Message: "\ufffd"}},
		{name: "duplicate key", body: `{"channel":"public","channel":"$staff","message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "duplicate data", subject: "public", body: `{"data":1,"data":2}`, wantErr: instant.ErrBadEnvelope},
		{name: "duplicate by escape", body: `{"channel":"public","\u0063hannel":"$staff","message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "escaped key", body: `{"\u0063hannel":"public","message":"m"}`,
			want: instant.Envelope{Channel: "public", Message: "m"}},
		{name: "case-variant key", body: `{"Channel":"$staff","message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "case-variant beside the key", subject: "public", body: `{"message":"m","MESSAGE":"n"}`, wantErr: instant.ErrBadEnvelope},
		{name: "Unicode case-variant key", subject: "public", body: `{"message":"m","\u017fite":"s"}`, wantErr: instant.ErrBadEnvelope},
		{name: "duplicate keys inside data are data", subject: "public", body: `{"data":{"a":1,"a":2}}`,
			want: instant.Envelope{Channel: "public", Data: []byte(`{"a":1,"a":2}`)}},
		{name: "null fields", subject: "public", body: `{"message":"m","channel":null,"level":null,"site":null}`,
			want: instant.Envelope{Channel: "public", Message: "m"}},
		{name: "dotted subject channel", subject: "a.b", body: "hi", wantErr: instant.ErrBadEnvelope},
		{name: "channel with space", body: `{"channel":"a b","message":"m"}`, wantErr: instant.ErrBadEnvelope},
		{name: "too large", subject: "public", body: strings.Repeat("x", 201), wantErr: instant.ErrTooLarge},
		{name: "at the limit", subject: "public", body: strings.Repeat("x", 200),
			want: instant.Envelope{Channel: "public", Message: strings.Repeat("x", 200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := instant.ParseEnvelope(tt.subject, []byte(tt.body), 200)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Channel != tt.want.Channel || got.Message != tt.want.Message || string(got.Data) != string(tt.want.Data) ||
				got.EventClass != tt.want.EventClass || got.Bucket != tt.want.Bucket || got.Site != tt.want.Site || got.Level != tt.want.Level {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPublicationEncode(t *testing.T) {
	e := instant.Envelope{Channel: "public", Message: "hi", Data: []byte(`{"k": 1}`), EventClass: "important"}
	tests := []struct {
		name string
		env  instant.Envelope
		enc  instant.PayloadEncoding
		want string
	}{
		{"object", e, instant.EncodingObject, `{"id":"7","channel":"public","site":"Site","message":"hi","data":{"k":1},"event_class":"important"}`},
		{"string", e, instant.EncodingString, `"{\"id\":\"7\",\"channel\":\"public\",\"site\":\"Site\",\"message\":\"hi\",\"data\":{\"k\":1},\"event_class\":\"important\"}"`},
		{"site and bucket", instant.Envelope{Channel: "c", Message: "m", Site: "mine", Bucket: "b"}, instant.EncodingObject,
			`{"id":"7","channel":"c","site":"mine","message":"m","bucket":"b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.env.Publication("7", "Site").Encode(tt.enc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCodeOf(t *testing.T) {
	_, err := instant.ParseEnvelope("", []byte("{"), 10)
	if got := instant.CodeOf(err); got != instant.CodeBadEnvelope {
		t.Errorf("got %s, want bad_envelope", got)
	}
	if got := instant.CodeOf(errors.New("other")); got != instant.CodeInternal {
		t.Errorf("got %s, want internal", got)
	}
}

// FuzzParseEnvelope checks that no input crashes the parser, that errors
// always carry a rejection code, and that accepted envelopes encode to
// JSON that names their channel.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{"hi", `{"message":"m"}`, `{"channel":"$users","data":[1]}`, `{"data":null}`,
		`{"message":"m","level":"staff","site":"s","bucket":"b","event_class":"e"}`, "\xff", " {", `{"message":"m"}x`} {
		f.Add("public", []byte(s))
		f.Add("", []byte(s))
	}
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		env, err := instant.ParseEnvelope(subject, body, 1024)
		if err != nil {
			if c := instant.CodeOf(err); c != instant.CodeBadEnvelope && c != instant.CodeTooLarge {
				t.Fatalf("error %v has code %s", err, c)
			}
			return
		}
		if instant.ValidChannelName(env.Channel) != nil {
			t.Fatalf("accepted invalid channel %q", env.Channel)
		}
		for _, enc := range []instant.PayloadEncoding{instant.EncodingObject, instant.EncodingString} {
			if _, err := env.Publication("1", "s").Encode(enc); err != nil {
				t.Fatalf("encode %s: %v", enc, err)
			}
		}
	})
}
