package bootconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"initos/internal/boundedfile"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is matched (errors.Is) by every error about a malformed or
// invalid config.
var ErrInvalid = errors.New("invalid initrd config")

// maxDepth bounds JSON nesting (the schema needs 3).
const maxDepth = 8

// invalid returns an ErrInvalid error about the field path.
func invalid(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return fmt.Errorf("%w: %s", ErrInvalid, msg)
}

// Parse decodes and validates a config: one JSON object, at most MaxSize
// bytes of UTF-8, no unknown field, no duplicate key, nothing after it.
func Parse(b []byte) (*Config, error) {
	if len(b) > MaxSize {
		return nil, invalid("", "%d bytes, at most %d", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return nil, invalid("", "not UTF-8")
	}
	if err := checkKeys(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("", "data after the JSON object")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadFile reads and parses the config at path.
func ReadFile(path string) (*Config, error) {
	return boundedfile.Read("read initrd config", path, MaxSize, Parse)
}

// decodeError names the field of a json decoding error.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return invalid(te.Field, "%s where %s is expected", te.Value, te.Type)
	case errors.As(err, &se):
		return invalid("", "JSON syntax error at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid("", "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "truncated JSON")
	}
	return invalid("", "%v", err)
}

// checkKeys walks the JSON tokens and refuses a duplicate key in any
// object (encoding/json would silently keep the last one) and nesting
// deeper than maxDepth.
func checkKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	_, err := walkValue(dec, "", 0)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return decodeError(err)
	}
	return err
}

// walkValue consumes one JSON value; it returns the value's first token.
func walkValue(dec *json.Decoder, path string, depth int) (json.Token, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= maxDepth {
		return nil, invalid(path, "nested deeper than %d levels", maxDepth)
	}
	if d == '[' {
		for i := 0; dec.More(); i++ {
			if _, err := walkValue(dec, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return nil, err
			}
		}
	} else if err := walkObject(dec, path, depth); err != nil {
		return nil, err
	}
	_, err = dec.Token() // the closing delimiter
	return tok, err
}

func walkObject(dec *json.Decoder, path string, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		field := key
		if path != "" {
			field = path + "." + key
		}
		if seen[key] {
			return invalid(field, "key repeated")
		}
		if !lowerKey(key) {
			// encoding/json matches field names case-insensitively.
			return invalid(field, "unknown field (field names are lowercase)")
		}
		seen[key] = true
		if _, err := walkValue(dec, field, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// lowerKey reports whether k is spelled like the schema's field names.
func lowerKey(k string) bool {
	for i, r := range k {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r == '_' || r >= '0' && r <= '9')) {
			return false
		}
	}
	return k != ""
}
