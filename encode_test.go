package instant_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/instanthq/instant"
)

// referenceEncode is Publication.Encode written with encoding/json and
// HTML escaping off.
func referenceEncode(p instant.Publication, enc instant.PayloadEncoding) ([]byte, error) {
	marshal := func(v any) ([]byte, error) {
		var buf bytes.Buffer
		e := json.NewEncoder(&buf)
		e.SetEscapeHTML(false)
		if err := e.Encode(v); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
	b, err := marshal(p)
	if err != nil || enc != instant.EncodingString {
		return b, err
	}
	return marshal(string(b))
}

func TestEncodeDoesNotAmplify(t *testing.T) {
	lt := strings.Repeat("<", 60<<10)
	for _, enc := range []instant.PayloadEncoding{instant.EncodingObject, instant.EncodingString} {
		p := instant.Publication{ID: "i", Channel: "public", Site: "s", Message: lt, Data: json.RawMessage(`"` + lt + `"`)}
		got, err := p.Encode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 2*len(lt)+200 {
			t.Errorf("%s: %d bytes of '<' encoded into %d bytes", enc, 2*len(lt), len(got))
		}
		if !bytes.Contains(got, []byte("<<<<")) {
			t.Errorf("%s: '<' was escaped", enc)
		}
	}
}

// FuzzPublicationEncode checks that Encode gives exactly what
// encoding/json gives without HTML escaping.
func FuzzPublicationEncode(f *testing.F) {
	f.Add("id", "public", "site", "hi", []byte(`{"k": [1, "<&>"]}`), "e", "b")
	f.Add("", "", "", "\x00\b\f\n\r\t\"\\\u2028\u2029\xff<>&", []byte(" null "), "", "")
	f.Add("\xed\xa0\x80", "c", "s", "\xc3", []byte(`"\u2028 \ud800"`), "\x7f", "é")
	f.Add("i", "c", "s", "", []byte(`{"a":`), "", "")
	f.Fuzz(func(t *testing.T, id, channel, site, message string, data []byte, eventClass, bucket string) {
		p := instant.Publication{ID: id, Channel: channel, Site: site, Message: message, Data: data, EventClass: eventClass, Bucket: bucket}
		for _, enc := range []instant.PayloadEncoding{instant.EncodingObject, instant.EncodingString} {
			got, err := p.Encode(enc)
			want, wantErr := referenceEncode(p, enc)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s: error %v, reference error %v", enc, err, wantErr)
			}
			if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %q\nwant %q", enc, got, want)
			}
		}
	})
}
