package demo

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxLog caps the narration lines kept for the dashboard.
const maxLog = 200

// narrator tells the person watching what happens: timestamped lines in the terminal,
// the same lines in the dashboard's log.
type narrator struct {
	mu  sync.Mutex
	out io.Writer
	log []string
	now func() time.Time
}

func newNarrator(out io.Writer) *narrator { return &narrator{out: out, now: time.Now} }

// say announces a step of the demo.
func (n *narrator) say(format string, args ...any) {
	n.emit(n.now().Format(time.TimeOnly)+"  "+fmt.Sprintf(format, args...), true)
}

// timeline prints a finished migration's line, which starts with its own time.
func (n *narrator) timeline(line string) { n.emit(line, true) }

// detail prints an indented line in the terminal only.
func (n *narrator) detail(format string, args ...any) {
	n.emit("          "+fmt.Sprintf(format, args...), false)
}

func (n *narrator) emit(line string, keep bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintln(n.out, line)
	if keep {
		n.log = append(n.log, line)
		if len(n.log) > maxLog {
			n.log = slices.Delete(n.log, 0, len(n.log)-maxLog)
		}
	}
}

func (n *narrator) lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.log)
}

// Write takes the fleet's progress lines and prints them indented.
func (n *narrator) Write(p []byte) (int, error) {
	for line := range strings.Lines(string(p)) {
		if line = strings.TrimRight(line, "\n"); line != "" {
			n.detail("%s", line)
		}
	}
	return len(p), nil
}
