package instant

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The envelope decoder: one pass over the body, no reflection, no
// allocation beyond the strings it returns. It accepts exactly what
// DecodeObject accepts for an Envelope (the differential fuzz test
// FuzzEnvelopeDecoders holds it to that) and decodes it to the same
// values.

// envelopeFields are the JSON names of Envelope's fields, by field index.
var envelopeFields = [...]string{"channel", "message", "data", "event_class", "bucket", "site", "level"}

const (
	fieldChannel = iota
	fieldMessage
	fieldData
	fieldEventClass
	fieldBucket
	fieldSite
	fieldLevel
)

// maxDataDepth is how deeply data may nest: encoding/json's limit of
// 10000, less the envelope object around it.
const maxDataDepth = 10000 - 1

var errSyntax = errors.New("invalid JSON")

// parser reads JSON from b at i.
type parser struct {
	b      []byte
	i      int
	spaces int // blanks skipped so far

	strs [len(envelopeFields)]span // where the string fields' values are
}

// span is where a string's content is in the body.
type span struct {
	start, end int
	escaped    bool
}

func syntaxError(p *parser, what string) error {
	if p.i >= len(p.b) {
		return fmt.Errorf("%w: unexpected end, want %s", errSyntax, what)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d, want %s", errSyntax, p.b[p.i], p.i, what)
}

func (p *parser) skipSpace() {
	start := p.i
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
			continue
		}
		break
	}
	p.spaces += p.i - start
}

// eat consumes c if it is next.
func (p *parser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// decodeEnvelope decodes the JSON object in body, valid UTF-8 whose first
// non-blank byte is '{', into e. e.Data aliases body.
func decodeEnvelope(body []byte, e *Envelope) error {
	p := parser{b: body}
	p.skipSpace()
	if !p.eat('{') {
		return syntaxError(&p, "'{'")
	}
	p.skipSpace()
	if p.eat('}') {
		return p.end()
	}
	var seen uint8
	defer p.setStrings(e)
	for {
		p.skipSpace()
		start, end, escaped, err := p.str()
		if err != nil {
			return err
		}
		f, err := envelopeField(body[start:end], escaped)
		if err != nil {
			return err
		}
		if seen&(1<<f) != 0 {
			return fmt.Errorf("%w %q", ErrDuplicateKey, envelopeFields[f])
		}
		seen |= 1 << f
		p.skipSpace()
		if !p.eat(':') {
			return syntaxError(&p, "':'")
		}
		p.skipSpace()
		if err := p.field(e, f); err != nil {
			return err
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return p.end()
		}
		return syntaxError(&p, "',' or '}'")
	}
}

// end checks that nothing but blanks follows.
func (p *parser) end() error {
	p.skipSpace()
	if p.i != len(p.b) {
		return ErrTrailingData
	}
	return nil
}

// envelopeField returns the index of the field named by the key raw (the
// bytes between the quotes, with escapes when escaped).
func envelopeField(raw []byte, escaped bool) (int, error) {
	key := raw
	if escaped {
		var buf [32]byte
		key = appendUnquoted(buf[:0], raw)
	}
	switch string(key) {
	case "channel":
		return fieldChannel, nil
	case "message":
		return fieldMessage, nil
	case "data":
		return fieldData, nil
	case "event_class":
		return fieldEventClass, nil
	case "bucket":
		return fieldBucket, nil
	case "site":
		return fieldSite, nil
	case "level":
		return fieldLevel, nil
	}
	for _, name := range envelopeFields {
		if strings.EqualFold(string(key), name) {
			return 0, fmt.Errorf("%w: %q for %q", ErrCaseVariant, key, name)
		}
	}
	return 0, fmt.Errorf("%w %q", ErrUnknownField, key)
}

// field decodes the value of field f into e.
func (p *parser) field(e *Envelope, f int) error {
	if f == fieldData {
		start, spaces := p.i, p.spaces
		if err := p.skipValue(); err != nil {
			return err
		}
		e.Data = p.b[start:p.i]
		e.dataCompact = p.spaces == spaces
		return nil
	}
	if p.literal("null") {
		return nil // as encoding/json: null leaves a string unset
	}
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		if err := p.skipValue(); err != nil {
			return err
		}
		return fmt.Errorf("%s: want a string", envelopeFields[f])
	}
	start, end, escaped, err := p.str()
	if err != nil {
		return err
	}
	raw := p.b[start:end]
	if f == fieldLevel {
		if escaped {
			var buf [32]byte
			raw = appendUnquoted(buf[:0], raw)
		}
		for _, l := range Levels {
			if string(l) == string(raw) {
				e.Level = l
				return nil
			}
		}
		_, err := ParseLevel(string(raw))
		return err
	}
	p.strs[f] = span{start, end, escaped}
	return nil
}

// setStrings sets the string fields of e from the spans recorded, all in
// one allocation.
func (p *parser) setStrings(e *Envelope) {
	n := 0
	for _, sp := range p.strs {
		n += sp.end - sp.start // unescaping never lengthens
	}
	if n == 0 {
		return
	}
	buf := make([]byte, 0, n)
	var ends [len(envelopeFields)][2]int
	for f, sp := range p.strs {
		start := len(buf)
		if sp.escaped {
			buf = appendUnquoted(buf, p.b[sp.start:sp.end])
		} else {
			buf = append(buf, p.b[sp.start:sp.end]...)
		}
		ends[f] = [2]int{start, len(buf)}
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
	str := func(f int) string { return all[ends[f][0]:ends[f][1]] }
	e.Channel, e.Message, e.EventClass, e.Bucket, e.Site = str(fieldChannel), str(fieldMessage), str(fieldEventClass), str(fieldBucket), str(fieldSite)
}

// literal consumes lit if it is next.
func (p *parser) literal(lit string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
		p.i += len(lit)
		return true
	}
	return false
}

// str reads a string at p.i and returns where its content starts and ends
// and whether it has escapes.
func (p *parser) str() (start, end int, escaped bool, err error) {
	if !p.eat('"') {
		return 0, 0, false, syntaxError(p, "a string")
	}
	start = p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return start, p.i - 1, escaped, nil
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				p.i++
				return 0, 0, false, syntaxError(p, "an escape")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) || hex4(p.b[p.i+2:p.i+6]) < 0 {
					p.i++
					return 0, 0, false, syntaxError(p, "\\u and four hex digits")
				}
				p.i += 6
			default:
				p.i++
				return 0, 0, false, syntaxError(p, "an escape")
			}
		case c < 0x20:
			return 0, 0, false, syntaxError(p, "no control character in a string")
		default:
			p.i++
		}
	}
	return 0, 0, false, syntaxError(p, "'\"'")
}

// hex4 returns the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendUnquoted appends the string whose content raw is (checked by
// str) with its escapes resolved as encoding/json does: an unpaired
// surrogate becomes U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		switch c := raw[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[2:6])
			raw = raw[6:]
			if utf16.IsSurrogate(r) {
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					if r2 := hex4(raw[2:6]); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							raw = raw[6:]
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}

// skipValue reads one JSON value at p.i, at most maxDataDepth deep.
func (p *parser) skipValue() error {
	var objects [maxDataDepth/64 + 1]uint64 // bit d: level d is an object
	depth := 0
	inObject := func() bool { return objects[(depth-1)/64]&(1<<((depth-1)%64)) != 0 }
	for {
		// A value is next.
		p.skipSpace()
		if p.i >= len(p.b) {
			return syntaxError(p, "a value")
		}
		switch c := p.b[p.i]; {
		case c == '{' || c == '[':
			if depth == maxDataDepth {
				return fmt.Errorf("%w: nested too deeply", errSyntax)
			}
			if c == '{' {
				objects[depth/64] |= 1 << (depth % 64)
			} else {
				objects[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			p.i++
			p.skipSpace()
			if c == '{' {
				if p.eat('}') {
					depth--
					break
				}
				if err := p.key(); err != nil {
					return err
				}
				continue
			}
			if p.eat(']') {
				depth--
				break
			}
			continue
		case c == '"':
			if _, _, _, err := p.str(); err != nil {
				return err
			}
		case c == '-' || '0' <= c && c <= '9':
			if err := p.number(); err != nil {
				return err
			}
		case p.literal("true"), p.literal("false"), p.literal("null"):
		default:
			return syntaxError(p, "a value")
		}
		// A value ended: close containers until one goes on.
		for {
			if depth == 0 {
				return nil
			}
			p.skipSpace()
			obj := inObject()
			if p.eat(',') {
				if obj {
					p.skipSpace()
					if err := p.key(); err != nil {
						return err
					}
				}
				break
			}
			if obj && p.eat('}') || !obj && p.eat(']') {
				depth--
				continue
			}
			if obj {
				return syntaxError(p, "',' or '}'")
			}
			return syntaxError(p, "',' or ']'")
		}
	}
}

// key reads an object key and its colon.
func (p *parser) key() error {
	if _, _, _, err := p.str(); err != nil {
		return err
	}
	p.skipSpace()
	if !p.eat(':') {
		return syntaxError(p, "':'")
	}
	return nil
}

// number reads a JSON number.
func (p *parser) number() error {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	p.eat('-')
	switch {
	case p.eat('0'):
	case digits() == 0:
		return syntaxError(p, "a digit")
	}
	if p.eat('.') && digits() == 0 {
		return syntaxError(p, "a digit")
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return syntaxError(p, "a digit")
		}
	}
	return nil
}
