package extender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A minimal JSON scanner for the large parts of extender requests. encoding/json reads a
// body twice (validation, then decoding) at about 200 MB/s; a request names up to thousands
// of nodes, and all the extender needs of them is their names. These functions find value
// boundaries and strings; the parts the extender decodes (the pod, a node it has not seen)
// still go through encoding/json, which validates them. Values skipped here are not
// validated: accepted nodes are echoed as they came.

var errSyntax = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString returns the end (one past the closing quote) of the string starting at b[i]
// == '"', and whether it holds escapes. It looks for quotes with bytes.IndexByte, which is
// vectorised: strings are most of a node's bytes. Control characters, which JSON forbids in
// strings, are left for whoever decodes the string.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false, fmt.Errorf("%w: unterminated string at offset %d", errSyntax, i)
		}
		j += k
		// A quote preceded by an odd number of backslashes is escaped.
		n := 0
		for j-1-n > i && b[j-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return j + 1, escaped || bytes.IndexByte(b[i+1:j], '\\') >= 0, nil
		}
		escaped = true
		j++
	}
}

// stringValue decodes the string token b[i:end].
func stringValue(b []byte, i, end int, escaped bool) (string, error) {
	if !escaped {
		return string(b[i+1 : end-1]), nil
	}
	var s string
	if err := json.Unmarshal(b[i:end], &s); err != nil {
		return "", fmt.Errorf("%w: bad string at offset %d: %w", errSyntax, i, err)
	}
	return s, nil
}

// skipValue returns the end of the value starting at b[i]. Objects and arrays are matched
// bracket for bracket; scalars run to the next delimiter.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: value expected at end of input", errSyntax)
	}
	switch b[i] {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, err := scanString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated %c at offset %d", errSyntax, b[i], i)
	case '}', ']', ',', ':':
		return 0, fmt.Errorf("%w: unexpected %c at offset %d", errSyntax, b[i], i)
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	if !json.Valid(b[i:j]) {
		return 0, fmt.Errorf("%w: bad literal %.20q at offset %d", errSyntax, b[i:j], i)
	}
	return j, nil
}

// eachMember calls f with each key and raw value of the object that is all of b (bar
// surrounding space). A null object has no members.
func eachMember(b []byte, f func(key string, value []byte) error) error {
	i := skipWS(b, 0)
	if isNull(b[i:]) {
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: object expected", errSyntax)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("%w: key expected at offset %d", errSyntax, i)
		}
		end, escaped, err := scanString(b, i)
		if err != nil {
			return err
		}
		key, err := stringValue(b, i, end, escaped)
		if err != nil {
			return err
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: colon expected at offset %d", errSyntax, i)
		}
		i = skipWS(b, i+1)
		end, err = skipValue(b, i)
		if err != nil {
			return err
		}
		if err := f(key, b[i:end]); err != nil {
			return err
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return trailing(b, i+1)
		}
		return fmt.Errorf("%w: comma or } expected at offset %d", errSyntax, i)
	}
}

// eachElement calls f with each raw element of the array that is all of b. A null array
// has no elements.
func eachElement(b []byte, f func(value []byte) error) error {
	i := skipWS(b, 0)
	if isNull(b[i:]) {
		return nil
	}
	if i >= len(b) || b[i] != '[' {
		return fmt.Errorf("%w: array expected", errSyntax)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return trailing(b, i+1)
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if err := f(b[i:end]); err != nil {
			return err
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return trailing(b, i+1)
		}
		return fmt.Errorf("%w: comma or ] expected at offset %d", errSyntax, i)
	}
}

func isNull(b []byte) bool {
	return len(b) >= 4 && string(b[:4]) == "null" && skipWS(b, 4) == len(b)
}

func trailing(b []byte, i int) error {
	if i = skipWS(b, i); i != len(b) {
		return fmt.Errorf("%w: unexpected data after the value at offset %d", errSyntax, i)
	}
	return nil
}
