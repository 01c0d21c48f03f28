package chaincode

import "testing"

func TestCodeOf(t *testing.T) {
	cases := []struct {
		err  error
		want Code
	}{
		{nil, ""},
		{refuse(CodeConflict, "x"), CodeConflict},
		{errorString("submitting: endorse failed: forbidden: MSP x may not bid"), CodeForbidden},
		{errorString("disk full"), ""},
	}
	for _, tc := range cases {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
