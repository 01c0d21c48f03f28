package webhook

import "fmt"

// Limits on quantity-like strings. resource.ParseQuantity, which decoding a pod runs on
// every resource value, takes tens of seconds on "1e-99999999" and seconds on a megabyte
// of digits; a body reaching the webhook's port directly could hold them.
const (
	maxQuantityLen       = 64
	maxQuantityExpDigits = 4
)

// checkQuantities rejects raw JSON holding a string that reads as a number but is too long
// or has too large an exponent to parse in bounded time. It looks at every string, not only
// resource fields: a pod has quantities in many places, and no real value looks like this.
func checkQuantities(raw []byte) error {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; isDigit(c) || c == '-' {
			// Quantity.UnmarshalJSON parses bare JSON numbers too.
			end := i
			for end < len(raw) && (isDigit(raw[end]) || raw[end] == '.' || raw[end] == 'e' || raw[end] == 'E' || raw[end] == '+' || raw[end] == '-') {
				end++
			}
			if s := raw[i:end]; unsafeQuantity(s) {
				return fmt.Errorf("number %.32s… is too long or has too large an exponent to parse safely", s)
			}
			i = end - 1
			continue
		}
		if raw[i] != '"' {
			continue
		}
		start := i + 1
		end := start
		for end < len(raw) && raw[end] != '"' {
			if raw[end] == '\\' {
				end++
			}
			end++
		}
		if end > len(raw) {
			end = len(raw)
		}
		if s := raw[start:end]; unsafeQuantity(s) {
			if len(s) > 32 {
				s = append(s[:32:32], "…"...)
			}
			return fmt.Errorf("value %q reads as a number too long or with too large an exponent to parse safely", s)
		}
		i = end
	}
	return nil
}

// unsafeQuantity reports whether s looks like a quantity (sign, digits, a point, an
// exponent, a unit suffix of up to two letters) that exceeds the limits.
func unsafeQuantity(s []byte) bool {
	if len(s) == 0 || !(isDigit(s[0]) || s[0] == '+' || s[0] == '-' || s[0] == '.') {
		return false
	}
	body := s
	for n := 0; n < 2 && len(body) > 0 && isUnitLetter(body[len(body)-1]); n++ {
		body = body[:len(body)-1]
	}
	expDigits, inExp := 0, false
	for _, c := range body {
		switch {
		case isDigit(c):
			if inExp {
				expDigits++
			}
		case c == '.' || c == '+' || c == '-':
		case c == 'e' || c == 'E':
			inExp = true
		default:
			return false // not a number: an ordinary string
		}
	}
	return len(s) > maxQuantityLen || expDigits > maxQuantityExpDigits
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isUnitLetter(c byte) bool {
	switch c {
	case 'K', 'M', 'G', 'T', 'P', 'E', 'k', 'm', 'i', 'n', 'u':
		return true
	}
	return false
}
