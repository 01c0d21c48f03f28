package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
)

// TestLoggingFormatJSON runs a command under the root's flags with --logging-format=json and
// reads back what a contextual logger below it wrote: one JSON object with the message and
// its key/value pairs.
func TestLoggingFormatJSON(t *testing.T) {
	// The JSON logger writes to standard error as it is when the flags are applied.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	t.Cleanup(func() {
		os.Stderr = stderr
		// Logging is configured once per process; undo it for the next test.
		if err := logsapi.ResetForTest(nil); err != nil {
			t.Error(err)
		}
	})

	root := NewCommand()
	root.AddCommand(&cobra.Command{
		Use: "logsomething",
		RunE: func(cmd *cobra.Command, _ []string) error {
			klog.FromContext(cmd.Context()).Info("Probe logged", "answer", 42)
			klog.Flush()
			return nil
		},
	})
	root.SetArgs([]string{"--logging-format=json", "logsomething"})
	runErr := root.ExecuteContext(context.Background())
	os.Stderr = stderr
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for line := range bytes.Lines(out) {
		var entry struct {
			Msg    string `json:"msg"`
			Answer int    `json:"answer"`
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		found = found || entry.Msg == "Probe logged" && entry.Answer == 42
	}
	if !found {
		t.Fatalf("no JSON entry for the probe in %q", out)
	}
}

// TestLoggingFormatUnknown: a format that does not exist is refused before the command runs.
func TestLoggingFormatUnknown(t *testing.T) {
	root := NewCommand()
	ran := false
	root.AddCommand(&cobra.Command{Use: "x", Run: func(*cobra.Command, []string) { ran = true }})
	root.SetArgs([]string{"--logging-format=xml", "x"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "configuring logging") || !strings.Contains(err.Error(), "xml") || ran {
		t.Fatalf("error = %v, ran = %v; want a logging configuration error naming xml and nothing run", err, ran)
	}
}
