package fleettest

import (
	"fmt"
	"testing"

	"github.com/edgemigrate/edgemigrate/localcluster"
)

func TestSkipReason(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		require string
		want    bool
	}{
		{"short", errShort, "", true},
		{"short even when tools are required", errShort, "1", true},
		{"tools missing", fmt.Errorf("starting: %w", localcluster.ErrToolsMissing), "", true},
		{"tools missing but required", fmt.Errorf("starting: %w", localcluster.ErrToolsMissing), "1", false},
		{"any other failure", fmt.Errorf("webhook exited"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(RequireToolsEnv, tc.require)
			if got, reason := skipReason(tc.err); got != tc.want {
				t.Errorf("skipReason(%v) = %v (%q), want %v", tc.err, got, reason, tc.want)
			}
		})
	}
}
