package localcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeBinDir makes a bin directory whose etcd runs script and whose other tools do nothing:
// enough to exercise how Start reports a component that fails, without real binaries.
func fakeBinDir(t *testing.T, etcdScript string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range binaries {
		script := "#!/bin/sh\nexit 0\n"
		if name == "etcd" {
			script = "#!/bin/sh\n" + etcdScript + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStartReportsFailingComponent(t *testing.T) {
	tests := []struct {
		name     string
		etcd     string
		wantErr  []string
		wantPIDs int
	}{
		{
			name:    "exits at once",
			etcd:    `echo "fatal: data dir is on fire" >&2; exit 3`,
			wantErr: []string{"etcd exited before becoming ready", "exit status 3", "data dir is on fire"},
		},
		{
			name:    "never ready",
			etcd:    `echo "waiting for quorum"; exec sleep 600`,
			wantErr: []string{"etcd not ready after 1s", "/health", "waiting for quorum"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Start(context.Background(), Options{
				Name: "broken", BinDir: fakeBinDir(t, tt.etcd), Dir: t.TempDir(),
				ReadyTimeout: time.Second, StopGrace: 100 * time.Millisecond,
			})
			if err == nil {
				t.Fatal("Start succeeded with a broken etcd")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if !strings.Contains(err.Error(), "starting cluster broken (files in ") {
				t.Errorf("error does not say where the logs are: %v", err)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("Start took %s to give up", time.Since(start))
			}
		})
	}
}

func TestStartStopsWhatItStartedOnFailure(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "etcd.pid")
	_, err := Start(context.Background(), Options{
		Name: "broken", BinDir: fakeBinDir(t, `echo $$ > `+pidFile+`; trap '' TERM; exec sleep 600`), Dir: t.TempDir(),
		ReadyTimeout: 500 * time.Millisecond, StopGrace: 100 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("Start succeeded with an etcd that never answers")
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatalf("fake etcd never ran: %v", rerr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("etcd (pid %d) still running after a failed Start: kill -0 = %v", pid, err)
	}
}

func TestMissingTools(t *testing.T) {
	empty := t.TempDir()
	_, err := Start(context.Background(), Options{BinDir: empty})
	if !errors.Is(err, ErrToolsMissing) {
		t.Fatalf("got %v, want ErrToolsMissing", err)
	}
	if !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), empty) {
		t.Errorf("error does not say what to do and where it looked: %v", err)
	}

	t.Setenv(BinDirEnv, empty)
	if _, err := FindBinDir(); !errors.Is(err, ErrToolsMissing) {
		t.Errorf("FindBinDir with %s=%s: got %v, want ErrToolsMissing", BinDirEnv, empty, err)
	}
}
