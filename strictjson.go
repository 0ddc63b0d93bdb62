package instant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// The strict JSON rule, for every JSON object instant reads from the
// outside (envelopes, login and subscribe bodies): the whole body is valid
// UTF-8, it holds exactly one JSON object and nothing after it but
// blanks, and no key appears twice or differs from a field name only by
// letter case (encoding/json would otherwise let the last duplicate or a
// "Channel" for "channel" win). Keys nested inside field values are not
// checked.

// Errors of DecodeObject and ParseEnvelope, wrapped with details.
var (
	ErrNotUTF8       = errors.New("not valid UTF-8")
	ErrDuplicateKey  = errors.New("duplicate key")
	ErrCaseVariant   = errors.New("key differs from a field name only by letter case")
	ErrUnknownField  = errors.New("unknown field")
	ErrTrailingData  = errors.New("trailing data after the JSON object")
	ErrNotJSONObject = errors.New("not a JSON object")
)

// DecodeObject decodes body, one JSON object, into v, a pointer to a
// struct, following the strict JSON rule above. Keys that match no field
// are ErrUnknownField unless allowUnknown, when they are ignored (still
// refused when they differ from a field name only by case, or repeat).
// Other errors come from encoding/json (syntax, types).
func DecodeObject(body []byte, v any, allowUnknown bool) error {
	if !utf8.Valid(body) {
		return ErrNotUTF8
	}
	if err := checkKeys(body, fieldNames(reflect.TypeOf(v)), allowUnknown); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if !allowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}

// checkKeys reads the keys of the JSON object in body and refuses
// duplicates, case variants of names and, unless allowUnknown, keys that
// are not in names.
func checkKeys(body []byte, names []string, allowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return ErrNotJSONObject
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("%w %q", ErrDuplicateKey, key)
		}
		seen[key] = true
		if err := checkName(key, names, allowUnknown); err != nil {
			return err
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// checkName refuses key unless it is one of names, or (allowUnknown) it
// is like none of them.
func checkName(key string, names []string, allowUnknown bool) error {
	for _, n := range names {
		if key == n {
			return nil
		}
	}
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return fmt.Errorf("%w: %q for %q", ErrCaseVariant, key, n)
		}
	}
	if !allowUnknown {
		return fmt.Errorf("%w %q", ErrUnknownField, key)
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type → []string

// fieldNames returns the JSON names of the fields of the struct t points
// to (exported fields, top level).
func fieldNames(t reflect.Type) []string {
	if names, ok := fieldNameCache.Load(t); ok {
		return names.([]string)
	}
	var names []string
	if t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		for f := range t.Elem().Fields() {
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch name {
			case "-":
				continue
			case "":
				name = f.Name
			}
			names = append(names, name)
		}
	}
	fieldNameCache.Store(t, names)
	return names
}
