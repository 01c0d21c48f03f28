package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessStop(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"exits on SIGTERM", "echo started; exec sleep 60"},
		// kube-apiserver can take a minute on SIGTERM: the grace period must end in SIGKILL.
		{"ignores SIGTERM", "trap '' TERM; echo started; sleep 60 & wait; sleep 60"},
		{"leaves a child behind", "echo started; sleep 60 & exec sleep 61"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "p.log")
			p, err := startProcess("sh", "/bin/sh", []string{"-c", tt.script}, log)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(tailFile(log, 5), "started") })
			p.stop(200 * time.Millisecond)
			if done, _ := p.exited(); !done {
				t.Fatal("process not reaped after stop")
			}
			// Nothing of its process group may survive.
			if err := syscall.Kill(-p.pid(), 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process group %d still has members (kill -0: %v)", p.pid(), err)
			}
			p.stop(time.Second) // idempotent
		})
	}
}

// TestChildDiesWithParent: a test binary killed by a timeout or a crash runs no cleanup,
// so the kernel must end the components it started.
func TestChildDiesWithParent(t *testing.T) {
	if os.Getenv("LOCALCLUSTER_HELPER") == "1" {
		p, err := startProcess("sleep", "/bin/sleep", []string{"600"}, filepath.Join(os.Getenv("LOCALCLUSTER_DIR"), "sleep.log"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(p.pid())
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$")
	helper.Env = append(os.Environ(), "LOCALCLUSTER_HELPER=1", "LOCALCLUSTER_DIR="+t.TempDir())
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading child pid from helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("child %d not running while its parent lives: %v", pid, err)
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	waitFor(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) })
}

func TestStartProcessMissingBinary(t *testing.T) {
	_, err := startProcess("nothing", filepath.Join(t.TempDir(), "nothing"), nil, filepath.Join(t.TempDir(), "log"))
	if err == nil || !strings.Contains(err.Error(), "starting nothing") {
		t.Fatalf("got %v, want an error naming the component", err)
	}
}

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	var long strings.Builder
	for i := range 100_000 {
		long.WriteString("line ")
		long.WriteString(strings.Repeat("x", i%7))
		long.WriteString("\n")
	}
	long.WriteString("second last\nlast\n")
	tests := []struct {
		name    string
		content string
		n       int
		want    string
	}{
		{"short", "a\nb\nc\n", 2, "b\nc"},
		{"fewer lines than asked", "a\n", 5, "a"},
		{"no trailing newline", "a\nb", 1, "b"},
		{"larger than the window", long.String(), 2, "second last\nlast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := tailFile(path, tt.n); got != tt.want {
				t.Errorf("tailFile = %q, want %q", got, tt.want)
			}
		})
	}
	if got := tailFile(filepath.Join(dir, "absent"), 3); !strings.Contains(got, "cannot read") {
		t.Errorf("missing file: %q", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
