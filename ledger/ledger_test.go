package ledger

import (
	"slices"
	"testing"
	"time"
)

func TestRetryBackoff(t *testing.T) {
	cases := []struct {
		name           string
		initial, limit time.Duration
		want           []time.Duration
	}{
		{"defaults", 0, 0, []time.Duration{1, 2, 4, 8, 16, 30, 30}},
		{"limit below initial", 5, 2, []time.Duration{5, 5, 5}},
		{"capped", 3, 10, []time.Duration{3, 6, 10, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := RetryBackoff(tc.initial*time.Second, tc.limit*time.Second)
			var got []time.Duration
			for range tc.want {
				got = append(got, b.Step()/time.Second)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("waits %v s, want %v s", got, tc.want)
			}
		})
	}
}
