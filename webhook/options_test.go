package webhook

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestOptions(t *testing.T) {
	parse := func(args ...string) error {
		o := NewOptions()
		fs := pflag.NewFlagSet("webhook", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		return o.Validate()
	}
	if err := parse("--cluster-id=edge-1", "--tls-cert-file=c", "--tls-key-file=k"); err != nil {
		t.Errorf("files: %v", err)
	}
	if err := parse("--cluster-id=edge-1", "--self-signed"); err != nil {
		t.Errorf("self-signed: %v", err)
	}
	for args, want := range map[string]string{
		"--tls-cert-file=c --tls-key-file=k":                                  "--cluster-id is required",
		"--cluster-id=e":                                                      "--tls-cert-file and --tls-key-file are required",
		"--cluster-id=e --self-signed --tls-cert-file=c":                      "exclude each other",
		"--cluster-id=e --self-signed --webhook-config-name=":                 "needs --webhook-config-name",
		"--cluster-id=e --tls-cert-file=c --tls-key-file=k --address=":        "--address is required",
		"--cluster-id=e --tls-cert-file=c --tls-key-file=k --scheduler-name=": "--scheduler-name must not be empty",
	} {
		err := parse(strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", args, err, want)
		}
	}
}
