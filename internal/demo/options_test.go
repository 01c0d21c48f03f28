package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "edgemigrate")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
		// wantBinary is the binary chosen when there is no error.
		wantBinary string
	}{
		{name: "given binary", opts: Options{Binary: bin}, wantBinary: bin},
		{name: "default binary is beside the executable", opts: Options{}, wantErr: filepath.Join(filepath.Dir(exe), "edgemigrate") + ": no such file"},
		{name: "missing binary names the flag", opts: Options{Binary: bin + "-missing"}, wantErr: "--binary"},
		{name: "one cluster", opts: Options{Clusters: 1, Binary: bin}, wantErr: "--clusters 1: a migration needs at least 2 clusters"},
		{name: "negative duration", opts: Options{Duration: -time.Second, Binary: bin}, wantErr: "--duration -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			err := o.defaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Binary != tc.wantBinary || o.Clusters != 2 || o.Out == nil || o.Address == "" {
				t.Fatalf("defaults = %+v", o)
			}
		})
	}
}
