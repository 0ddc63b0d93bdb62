package instant_test

import (
	"testing"

	"github.com/instanthq/instant"
)

// BenchmarkParseEncode parses a typical envelope and encodes its
// publication, the bridge's per-envelope work before the relay.
func BenchmarkParseEncode(b *testing.B) {
	for _, bc := range []struct{ name, subject, body string }{
		{"plain", "public", "Order 1234 shipped"},
		{"envelope", "", `{"channel":"$users","message":"Order 1234 shipped","data":{"order":1234,"items":["a","b"],"total":12.5},"event_class":"important","bucket":"orders"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				env, err := instant.ParseEnvelope(bc.subject, body, instant.DefaultMaxPayload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := env.Publication("kW5u1AbKa6PzQjmHtqwNJ1", "Site").Encode(instant.EncodingObject); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
