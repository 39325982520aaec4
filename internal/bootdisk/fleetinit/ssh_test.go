package main

import (
	"slices"
	"testing"
)

// TestSplitWords: the quoting of cmd/initos's shellJoin (single quotes,
// a quote written as quote, backslash, quote, quote) and plain words come
// back as the arguments.
func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"initos slot status --json", []string{"initos", "slot", "status", "--json"}},
		{"initos upgrade --from 'reg.example:5000/boot:v2?x=1'", []string{"initos", "upgrade", "--from", "reg.example:5000/boot:v2?x=1"}},
		{`initos a 'it'\''s' '' b`, []string{"initos", "a", "it's", "", "b"}},
		{"  poweroff  ", []string{"poweroff"}},
		{`x\ y`, []string{"x y"}},
		{"", nil},
	} {
		if got, err := splitWords(c.in); err != nil || !slices.Equal(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v, want %q", c.in, got, err, c.want)
		}
	}
	if _, err := splitWords("initos 'open"); err == nil {
		t.Errorf("splitWords(unterminated quote) = nil error, want one")
	}
}
