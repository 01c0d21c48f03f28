package chaincode

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		n    int
		want string
	}{
		{name: "short enough", s: "abc", n: 3, want: "abc"},
		{name: "cut with ellipsis", s: "abcdefgh", n: 6, want: "abc..."},
		{name: "never inside a rune", s: "ab€cd", n: 6, want: "ab..."},
		{name: "room for the ellipsis only", s: "abcdef", n: 3, want: "..."},
		{name: "less than the ellipsis", s: "abcdef", n: 2, want: ".."},
		{name: "nothing", s: "abc", n: 0, want: ""},
		{name: "error quote keeps 64 bytes", s: strings.Repeat("x", 100), n: 67, want: strings.Repeat("x", 64) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Truncate(tc.s, tc.n)
			if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
				t.Fatalf("Truncate(%q, %d) = %q, want %q (at most %d bytes, valid UTF-8)", tc.s, tc.n, got, tc.want, tc.n)
			}
		})
	}
}
