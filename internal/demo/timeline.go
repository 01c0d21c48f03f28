package demo

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/internal/dashboard"
)

// Steps of a migration's timeline, in the order they happen, named as the dashboard shows
// them. Each but the trigger is the time of a ledger event.
const (
	stepProposed          = "Proposed"
	stepDecided           = "Decided"
	stepDestinationFailed = "DestinationFailed"
	stepReady             = "Ready"
	stepCompleted         = "Completed"
	stepAborted           = "Aborted"
)

// stepOfEvent maps a ledger event to the timeline step it marks, "" for events that are
// not a step of a migration.
var stepOfEvent = map[string]string{
	chaincode.EventMigrationProposed:  stepProposed,
	chaincode.EventMigrationDecided:   stepDecided,
	chaincode.EventDestinationFailed:  stepDestinationFailed,
	chaincode.EventMigrationReady:     stepReady,
	chaincode.EventMigrationCompleted: stepCompleted,
	chaincode.EventMigrationAborted:   stepAborted,
}

// timelineSteps are the steps a terminal timeline line shows, with the words it uses.
var timelineSteps = []struct{ step, words string }{
	{stepProposed, "proposed"},
	{stepDecided, "decided"},
	{stepDestinationFailed, "destination failed"},
	{stepReady, "ready"},
	{stepCompleted, "source removed"},
	{stepAborted, "aborted"},
}

// record is what the demo knows of one migration, keyed by its ledger id. It is filled
// from two sides: the source cluster's Migration object (what, why, phase) and the
// ledger's events (when, to millisecond precision).
type record struct {
	id          string
	reason      v1alpha1.MigrationReason
	source      string
	destination string
	namespace   string
	kind, name  string
	clientID    string
	phase       v1alpha1.MigrationPhase
	statusWhy   string // status reason, e.g. NoDestination
	message     string
	// triggered is when the source's Migration object first appeared: the trigger.
	triggered time.Time
	steps     map[string]time.Time
	// done is set once the timeline line has been printed.
	done bool
}

func newRecord(id string) *record { return &record{id: id, steps: map[string]time.Time{}} }

// workload is Kind/namespace/name, as edgemigrate.io/workload spells it.
func (r *record) workload() string {
	if r.kind == "" {
		return ""
	}
	return r.kind + "/" + r.namespace + "/" + r.name
}

// started is when the migration began: its trigger, or its earliest step if the trigger
// was seen late (the demo's watch may lag the ledger by a few milliseconds).
func (r *record) started() time.Time {
	t := r.triggered
	for _, at := range r.steps {
		if t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}

// final reports whether the migration is over and its timeline complete: a completed
// migration also needs the ledger's Completed event, which carries the last duration.
func (r *record) final() bool {
	switch r.phase {
	case v1alpha1.PhaseCompleted:
		return !r.steps[stepCompleted].IsZero()
	case v1alpha1.PhaseFailed, v1alpha1.PhaseAborted:
		return true
	}
	return false
}

// offset is how long after the start step was reached; ok is false when it was not.
func (r *record) offset(step string) (time.Duration, bool) {
	at, ok := r.steps[step]
	if !ok {
		return 0, false
	}
	return at.Sub(r.started()), true
}

// timelineLine is the terminal's line for a finished migration, e.g.
//
//	13:05:01  car-1 service detector: edge-a → edge-b  (ClientMobility)  proposed +12ms  decided +1.02s  ready +1.31s  source removed +1.45s
func (r *record) timelineLine() string {
	var b strings.Builder
	b.WriteString(r.started().Format(time.TimeOnly))
	b.WriteString("  ")
	if r.clientID != "" {
		b.WriteString(r.clientID + " ")
	}
	dest := r.destination
	if dest == "" {
		dest = "?"
	}
	fmt.Fprintf(&b, "service %s: %s → %s  (%s)", r.name, r.source, dest, r.reason)
	for _, s := range timelineSteps {
		if d, ok := r.offset(s.step); ok {
			fmt.Fprintf(&b, "  %s +%s", s.words, formatDuration(d))
		}
	}
	if r.phase != v1alpha1.PhaseCompleted {
		fmt.Fprintf(&b, "  %s", strings.ToUpper(string(r.phase)))
		if why := strings.TrimSpace(r.statusWhy + ": " + r.message); why != ":" {
			fmt.Fprintf(&b, " (%s)", strings.Trim(why, ": "))
		}
	}
	return b.String()
}

// formatDuration prints milliseconds below a second (tenths below 10ms) and hundredths of
// seconds above.
func formatDuration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// dashboardMigration is the record as the dashboard's timeline draws it.
func (r *record) dashboardMigration() dashboard.Migration {
	m := dashboard.Migration{
		ID: r.id, Reason: string(r.reason), Source: r.source, Destination: r.destination, Phase: string(r.phase),
		Workload: r.workload(), Message: r.message, Started: r.started(),
	}
	if m.Phase == "" {
		m.Phase = string(v1alpha1.PhasePending)
	}
	// The object's phase may lag the ledger's Completed event by a status write; the
	// dashboard shows a migration as completed only once both agree, like the terminal.
	if m.Phase == string(v1alpha1.PhaseCompleted) && !r.final() {
		m.Phase = string(v1alpha1.PhaseReady)
	}
	for _, s := range timelineSteps {
		if d, ok := r.offset(s.step); ok {
			m.Steps = append(m.Steps, dashboard.Step{Phase: s.step, At: d})
		}
	}
	slices.SortStableFunc(m.Steps, func(a, b dashboard.Step) int { return int(a.At - b.At) })
	return m
}

// summary is the closing figures of a run.
type summary struct {
	completed, failed int
	// sums and counts of each step's offset over completed migrations, for averages.
	sums   map[string]time.Duration
	counts map[string]int
	// Locator answers to the car's "where is my service?" queries.
	locatorAnswers, locatorUnknown, locatorErrors int
	locatorLatency                                time.Duration
}

// summarize sums up finished migrations and the locator's answers: answers that named a
// cluster (taking latency in all), unknown ones (404: no service running yet) and errors.
func summarize(records []*record, answers, unknown, errors int, latency time.Duration) summary {
	s := summary{sums: map[string]time.Duration{}, counts: map[string]int{},
		locatorAnswers: answers, locatorUnknown: unknown, locatorErrors: errors, locatorLatency: latency}
	for _, r := range records {
		if !r.final() {
			continue
		}
		if r.phase != v1alpha1.PhaseCompleted {
			s.failed++
			continue
		}
		s.completed++
		for _, st := range timelineSteps {
			if d, ok := r.offset(st.step); ok {
				s.sums[st.step] += d
				s.counts[st.step]++
			}
		}
	}
	return s
}

// lines is the summary as the terminal prints it.
func (s summary) lines() []string {
	out := []string{fmt.Sprintf("migrations: %d completed, %d failed", s.completed, s.failed)}
	var avg []string
	for _, st := range timelineSteps {
		if n := s.counts[st.step]; n > 0 {
			avg = append(avg, fmt.Sprintf("%s +%s", st.words, formatDuration(s.sums[st.step]/time.Duration(n))))
		}
	}
	if len(avg) > 0 {
		out = append(out, "average after the trigger: "+strings.Join(avg, ", "))
	}
	loc := fmt.Sprintf("locator: %d answers", s.locatorAnswers)
	if s.locatorAnswers > 0 {
		loc += fmt.Sprintf(" (%s each on average)", formatDuration(s.locatorLatency/time.Duration(s.locatorAnswers)))
	}
	loc += fmt.Sprintf(", %d before the service first ran, %d errors", s.locatorUnknown, s.locatorErrors)
	return append(out, loc)
}
