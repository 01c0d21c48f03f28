package localcluster

import (
	"context"
	"crypto/tls"
	"time"
)

// Process is a program started outside a cluster (an edgemigrate component, say) with the
// same handling as the cluster's own components: its own process group, output appended to
// a log file, killed by the kernel if this process dies first.
type Process struct {
	p *process
}

// StartProcess runs binary with args, its output appended to logPath. name appears in
// errors.
func StartProcess(name, binary string, args []string, logPath string) (*Process, error) {
	p, err := startProcess(name, binary, args, logPath)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// Name is the name given to StartProcess.
func (p *Process) Name() string { return p.p.name }

// PID is the operating-system process id.
func (p *Process) PID() int { return p.p.pid() }

// LogPath is the file the process writes to.
func (p *Process) LogPath() string { return p.p.logPath }

// Exited reports whether the process has ended, with its exit error.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.p.done }

// Wait blocks until the process has exited and returns its exit error.
func (p *Process) Wait() error {
	<-p.p.done
	return p.p.waitErr
}

// WaitReady polls url until it answers 200, the process exits or timeout passes; errors
// carry the end of the process's log. HTTPS certificates are not checked: components serve
// self-signed ones, and only readiness is asked.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	return p.p.waitReady(ctx, &tls.Config{InsecureSkipVerify: true}, url, timeout)
}

// Stop sends SIGTERM to the process group and SIGKILL after grace, and returns once the
// whole group is gone. Stopping an exited process does nothing.
func (p *Process) Stop(grace time.Duration) { p.p.stop(grace) }

// Kill sends SIGKILL to the whole process group at once, as a crash would, and returns once
// the group is gone.
func (p *Process) Kill() { p.p.kill() }

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return p.p.tail(n) }

// TailFile returns the last n lines of a file, for error messages about a log.
func TailFile(path string, n int) string { return tailFile(path, n) }
