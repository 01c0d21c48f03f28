package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	logsapi "k8s.io/component-base/logs/api/v1"
)

// TestRefusesBeforeStarting: bad flags and a missing edgemigrate binary are refused with a
// sentence naming the flag, before any cluster or listener is started.
func TestRefusesBeforeStarting(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "edgemigrate")
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--binary", missing}, wantErr: "or pass --binary"},
		{args: []string{"--clusters", "1", "--binary", missing}, wantErr: "--clusters 1: a migration needs at least 2 clusters"},
		{args: []string{"--duration", "-1s", "--binary", missing}, wantErr: "--duration -1s is negative"},
		{args: []string{"extra"}, wantErr: `unknown command "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// Logging is configured once per process; undo it for the next case.
			t.Cleanup(func() {
				if err := logsapi.ResetForTest(nil); err != nil {
					t.Error(err)
				}
			})
			cmd := newCommand()
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
