// Package ledgertest is the behaviour suite every ledger.Ledger backend must pass. The
// embedded, remote and Fabric backends run the same tests, so the descheduler can rely on
// the same behaviour from each.
package ledgertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// Backend is one ledger as the suite sees it.
type Backend struct {
	// Orgs are clients of the same ledger acting as two different MSPs, MSPs; Orgs[0]'s
	// is the ledger's admin MSP (chaincode.InitLedger), which admits the suite's clusters.
	Orgs [2]ledger.Ledger
	MSPs [2]string
	// Restart, when set, closes the ledger and opens it again from what it persisted,
	// returning new clients. Backends that cannot restart leave it nil.
	Restart func(t *testing.T) [2]ledger.Ledger
	// Advance, when set, moves the clock that stamps the ledger's transactions forward
	// (a Clock's); without it the suite waits the time out.
	Advance func(d time.Duration)
}

// Clock stamps a ledger's transactions in tests: each reading is a millisecond after the
// last, so consecutive transactions are always apart (a bid window of 1 ms has passed by
// the next), and Advance jumps ahead. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock starting now.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now is the next reading.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// wait lets d of ledger time pass.
func (b *Backend) wait(d time.Duration) {
	if b.Advance != nil {
		b.Advance(d)
		return
	}
	time.Sleep(d)
}

// StreamTimeout bounds how long the suite waits for an event before failing: a guard
// against a hang, not a measure of speed.
var StreamTimeout = 60 * time.Second

// Run runs the suite. open returns a ledger for one test: a fresh one, or a shared one
// (Fabric), since every test uses ids of its own.
func Run(t *testing.T, open func(t *testing.T) *Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *Backend, ids ids)
	}{
		{"Lifecycle", testLifecycle},
		{"DecideWaitsForLiveClusters", testDecideWaits},
		{"AccessControl", testAccessControl},
		{"WrongState", testWrongState},
		{"InvalidInput", testInvalidInput},
		{"FailedDestinationRedecides", testFailover},
		{"ConcurrentBids", testConcurrentBids},
		{"EventsResumeFromCheckpoint", testEventsResume},
		{"RestartLosesNothing", testRestart},
		{"Membership", testMembership},
		{"ClaimsChecked", testClaimsChecked},
		{"NeverZeroCopies", testNeverZeroCopies},
		{"EventsFromHead", testEventsFromHead},
		{"DeadClusters", testDeadClusters},
		{"HomesAndRehome", testHomes},
		{"DeadlineInLedgerTime", testDeadlineInLedgerTime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t), newIDs(t))
		})
	}
}

// ids are names unique to one test: a shared Fabric channel keeps every earlier test's.
type ids struct{ prefix string }

func newIDs(t *testing.T) ids {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return ids{"t" + hex.EncodeToString(b)}
}

func (i ids) cluster(name string) string   { return i.prefix + "-" + name }
func (i ids) migration(name string) string { return i.prefix + "-" + name }
func (i ids) owns(ev ledger.Event) bool {
	return strings.HasPrefix(ev.ClusterID, i.prefix+"-") || strings.HasPrefix(ev.MigrationID, i.prefix+"-")
}

// origin is the origin of a service of this test's source cluster.
func (i ids) origin() string { return i.cluster("src") + "/edge/" + i.prefix + "-uid" }

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), StreamTimeout)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func registration(id string) chaincode.ClusterRegistration {
	return chaincode.ClusterRegistration{ID: id, Location: chaincode.Location{Lat: 37.5665, Lon: 126.978},
		CoverageRadiusM: 3000, Capacity: chaincode.Resources{CPUMilli: 8000, MemoryBytes: 32 << 30, GPUSlots: 4, GPUMemoryBytes: 32 << 30}}
}

// proposal proposes a migration whose bids close after window, in ledger time.
func proposal(id, source string, window time.Duration) chaincode.Proposal {
	return chaincode.Proposal{ID: id, Source: source, Workload: "Deployment/edge/detector", BundleDigest: "sha256:" + strings.Repeat("0f", 32),
		Metadata: chaincode.WorkloadMetadata{SourceIP: "10.1.2.3", ContainerID: "containerd://1234", Image: "nvcr.io/nvidia/detector:1",
			ImageSizeBytes: 3 << 30, CPUMilli: 2000, MemoryBytes: 4 << 30, GPUSlots: 1, GPUMemoryBytes: 2 << 30},
		Reason: chaincode.ReasonClientMobility, ClientLocation: &chaincode.Location{Lat: 37.57, Lon: 126.98}, BidTimeoutMillis: window.Milliseconds()}
}

func bid(cluster string, score float64) chaincode.BidInput {
	return chaincode.BidInput{ClusterID: cluster, CanHost: true, CoversClient: true, Score: score}
}

// join admits cluster id for Orgs[org]'s MSP, by the admin, and registers it.
func join(t *testing.T, b *Backend, org int, id string) {
	t.Helper()
	ctx := ctxFor(t)
	must[*chaincode.Admission](t, "admitting "+id)(b.Orgs[0].AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: id, MSPID: b.MSPs[org]}))
	must[*chaincode.Cluster](t, "registering "+id)(b.Orgs[org].RegisterCluster(ctx, registration(id)))
}

// setup registers a source cluster for Orgs[0] and destinations for Orgs[1], and proposes
// migration "m" from the source, its bids closing after window. A short window lets the
// source decide without waiting for clusters of other tests that share the ledger.
func setup(t *testing.T, b *Backend, id ids, window time.Duration, destinations ...string) string {
	ctx := ctxFor(t)
	join(t, b, 0, id.cluster("src"))
	for _, d := range destinations {
		join(t, b, 1, id.cluster(d))
	}
	m := id.migration("m")
	must[*chaincode.Migration](t, "proposing")(b.Orgs[0].ProposeMigration(ctx, proposal(m, id.cluster("src"), window)))
	return m
}

// soon closes the bidding at once (the shortest window), later only after the suite is over.
const (
	soon  = time.Millisecond
	later = chaincode.MaxBidTimeoutMillis * time.Millisecond
)

// collect reads events of this test until n arrived.
func collect(t *testing.T, ch <-chan ledger.Event, id ids, n int) []ledger.Event {
	t.Helper()
	var out []ledger.Event
	timeout := time.After(StreamTimeout)
	for len(out) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream closed after %d of %d events", len(out), n)
			}
			if id.owns(ev) {
				out = append(out, ev)
			}
		case <-timeout:
			t.Fatalf("no event for %v after %d of %d events: %v", StreamTimeout, len(out), n, types(out))
		}
	}
	return out
}

func types(evs []ledger.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func testLifecycle(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	events := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Checkpoint{}))
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Cluster](t, "reporting capacity")(b.Orgs[1].ReportCapacity(ctx, id.cluster("b"), chaincode.Resources{CPUMilli: 6000, MemoryBytes: 20 << 30}))
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 0.4)))
	must[*chaincode.Bid](t, "bidding c")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("c"), 0.6)))
	open := must[[]*chaincode.Migration](t, "listing open")(b.Orgs[1].ListOpenMigrations(ctx))
	if !slices.ContainsFunc(open, func(x *chaincode.Migration) bool { return x.ID == m && len(x.Bids) == 2 }) {
		t.Errorf("open migrations do not list %s with its two bids", m)
	}
	decided := must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	if decided.State != chaincode.StateDecided || decided.Decision == nil || decided.Decision.Destination != id.cluster("c") {
		t.Fatalf("decided %s %+v, want destination %s", decided.State, decided.Decision, id.cluster("c"))
	}
	must[*chaincode.Migration](t, "reporting ready")(b.Orgs[1].ReportReady(ctx, m, id.cluster("c")))
	done := must[*chaincode.Migration](t, "completing")(b.Orgs[0].Complete(ctx, m))
	if done.State != chaincode.StateCompleted {
		t.Errorf("state %s after Complete", done.State)
	}
	got := must[*chaincode.Migration](t, "getting")(b.Orgs[1].GetMigration(ctx, m))
	if got.State != chaincode.StateCompleted || got.BundleDigest != proposal(m, "", soon).BundleDigest || len(got.History) != 4 {
		t.Errorf("stored migration: state %s, %d history entries", got.State, len(got.History))
	}
	c := must[*chaincode.Cluster](t, "getting cluster")(b.Orgs[0].GetCluster(ctx, id.cluster("b")))
	if c.Free.CPUMilli != 6000 || c.Capacity.CPUMilli != 8000 {
		t.Errorf("cluster b: %+v", c)
	}
	clusters := must[[]*chaincode.Cluster](t, "listing clusters")(b.Orgs[0].ListClusters(ctx))
	if n := len(slices.DeleteFunc(clusters, func(c *chaincode.Cluster) bool { return !strings.HasPrefix(c.ID, id.prefix) })); n != 3 {
		t.Errorf("listed %d of this test's clusters, want 3", n)
	}
	open = must[[]*chaincode.Migration](t, "listing open")(b.Orgs[1].ListOpenMigrations(ctx))
	if slices.ContainsFunc(open, func(x *chaincode.Migration) bool { return x.ID == m }) {
		t.Errorf("completed migration %s is still listed as open", m)
	}

	want := []string{chaincode.EventClusterAdmitted, chaincode.EventClusterRegistered, chaincode.EventClusterAdmitted, chaincode.EventClusterRegistered,
		chaincode.EventClusterAdmitted, chaincode.EventClusterRegistered, chaincode.EventMigrationProposed, chaincode.EventCapacityReported, chaincode.EventBidSubmitted, chaincode.EventBidSubmitted,
		chaincode.EventMigrationDecided, chaincode.EventMigrationReady, chaincode.EventMigrationCompleted}
	evs := collect(t, events, id, len(want))
	if !slices.Equal(types(evs), want) {
		t.Errorf("events %v, want %v", types(evs), want)
	}
	if last := evs[len(evs)-1]; last.State != chaincode.StateCompleted || last.Destination != id.cluster("c") || last.TxID == "" {
		t.Errorf("last event %+v", last)
	}
}

func testDecideWaits(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, later, "b", "c")
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	_, err := b.Orgs[0].Decide(ctx, m)
	if chaincode.CodeOf(err) != chaincode.CodeNotYet || !strings.Contains(err.Error(), id.cluster("c")) {
		t.Fatalf("Decide with %s silent: %v, want %q naming it", id.cluster("c"), err, chaincode.CodeNotYet)
	}
	if got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m)); got.State != chaincode.StateProposed {
		t.Errorf("state %s after a refused Decide", got.State)
	}
}

func testAccessControl(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b")
	refusals := []struct {
		name string
		call func() error
	}{
		{"source's MSP bids for the destination", func() error { _, err := b.Orgs[0].SubmitBid(ctx, m, bid(id.cluster("b"), 1)); return err }},
		{"other MSP takes over the source", func() error { _, err := b.Orgs[1].RegisterCluster(ctx, registration(id.cluster("src"))); return err }},
		{"other MSP reports the source's capacity", func() error {
			_, err := b.Orgs[1].ReportCapacity(ctx, id.cluster("src"), chaincode.Resources{})
			return err
		}},
		{"other MSP proposes from the source", func() error {
			_, err := b.Orgs[1].ProposeMigration(ctx, proposal(id.migration("m2"), id.cluster("src"), soon))
			return err
		}},
		{"other MSP aborts", func() error { _, err := b.Orgs[1].Abort(ctx, m, "mine now"); return err }},
	}
	for _, r := range refusals {
		if err := r.call(); chaincode.CodeOf(err) != chaincode.CodeForbidden {
			t.Errorf("%s: %v, want %q", r.name, err, chaincode.CodeForbidden)
		}
	}
	got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m))
	if got.State != chaincode.StateProposed || len(got.Bids) != 0 || len(got.History) != 1 {
		t.Errorf("refused calls changed the migration: %s, %d bids, %d history entries", got.State, len(got.Bids), len(got.History))
	}
	if _, err := b.Orgs[0].GetMigration(ctx, id.migration("m2")); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("refused proposal: GetMigration says %v, want %q", err, chaincode.CodeNotFound)
	}
	c := must[*chaincode.Cluster](t, "getting source")(b.Orgs[0].GetCluster(ctx, id.cluster("src")))
	if c.Free != registration("").Capacity {
		t.Errorf("refused capacity report changed the source: %+v", c.Free)
	}
}

func testWrongState(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Bid](t, "bidding")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	if _, err := b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("c"), 9)); chaincode.CodeOf(err) != chaincode.CodeConflict || !strings.Contains(err.Error(), "in state Decided") {
		t.Errorf("bid after the decision: %v, want a conflict naming state Decided", err)
	}
	if _, err := b.Orgs[0].Complete(ctx, m); chaincode.CodeOf(err) != chaincode.CodeConflict || !strings.Contains(err.Error(), "in state Decided") {
		t.Errorf("Complete before Ready: %v, want a conflict naming state Decided", err)
	}
	if _, err := b.Orgs[0].ProposeMigration(ctx, proposal(m, id.cluster("src"), soon)); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("proposing %s again: %v, want a conflict", m, err)
	}
	got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m))
	if len(got.Bids) != 1 || got.Decision.Destination != id.cluster("b") {
		t.Errorf("refused calls changed the migration: %+v", got)
	}
}

func testInvalidInput(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b")
	badLocation := proposal(id.migration("bad"), id.cluster("src"), soon)
	badLocation.ClientLocation.Lat = 123
	cases := []struct {
		name string
		call func() error
	}{
		{"NaN score", func() error { _, err := b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), math.NaN())); return err }},
		{"client latitude", func() error { _, err := b.Orgs[0].ProposeMigration(ctx, badLocation); return err }},
		{"negative free memory", func() error {
			_, err := b.Orgs[1].ReportCapacity(ctx, id.cluster("b"), chaincode.Resources{MemoryBytes: -1})
			return err
		}},
		{"bad migration id", func() error { _, err := b.Orgs[0].Decide(ctx, "Not/AnID"); return err }},
	}
	for _, tc := range cases {
		if err := tc.call(); chaincode.CodeOf(err) != chaincode.CodeInvalid {
			t.Errorf("%s: %v, want %q", tc.name, err, chaincode.CodeInvalid)
		}
	}
}

func testFailover(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 0.9)))
	must[*chaincode.Bid](t, "bidding c")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("c"), 0.3)))
	must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	got := must[*chaincode.Migration](t, "b fails")(b.Orgs[1].ReportFailed(ctx, m, id.cluster("b"), "image pull failed"))
	if got.State != chaincode.StateDecided || got.Decision.Destination != id.cluster("c") {
		t.Fatalf("after b failed: %s %+v, want Decided to c", got.State, got.Decision)
	}
	got = must[*chaincode.Migration](t, "c fails")(b.Orgs[1].ReportFailed(ctx, m, id.cluster("c"), "out of memory"))
	if got.State != chaincode.StateRejected || got.StateReason == "" {
		t.Fatalf("after c failed: %s %q, want Rejected with a reason", got.State, got.StateReason)
	}
}

func testConcurrentBids(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	names := []string{"b", "c", "d", "e", "f", "g"}
	m := setup(t, b, id, soon, names...)
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Go(func() {
			_, errs[i] = b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster(n), float64(i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("bid %s: %v", names[i], err)
		}
	}
	got := must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	if len(got.Bids) != len(names) || got.Decision.Destination != id.cluster("g") {
		t.Errorf("decided on %d bids to %+v, want %d bids and %s", len(got.Bids), got.Decision, len(names), id.cluster("g"))
	}
}

// testEventsResume reads a test's events, then reads again from the checkpoint of one in
// the middle: the second stream must start right after it.
func testEventsResume(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	first := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Checkpoint{}))
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Bid](t, "bidding")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	all := collect(t, first, id, 9)

	resumeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	second := must[<-chan ledger.Event](t, "resubscribing")(b.Orgs[1].Events(resumeCtx, all[5].Checkpoint))
	rest := collect(t, second, id, 3)
	if txs(rest) != txs(all[6:]) {
		t.Errorf("resumed after %s: got %s, want %s", all[5].TxID, txs(rest), txs(all[6:]))
	}
}

func txs(evs []ledger.Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type+"@"+ev.TxID)
	}
	return fmt.Sprint(out)
}

// testRestart checks that state and the event log survive a restart, and that a consumer
// that saved a checkpoint before it misses and repeats nothing after it.
func testRestart(t *testing.T, b *Backend, id ids) {
	if b.Restart == nil {
		t.Skip("this backend does not restart within a test")
	}
	ctx := ctxFor(t)
	subCtx, cancel := context.WithCancel(ctx)
	events := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(subCtx, ledger.Checkpoint{}))
	m := setup(t, b, id, soon, "b")
	before := collect(t, events, id, 5)
	cancel()
	saved := before[3].Checkpoint // the consumer handled four events before the restart

	orgs := b.Restart(t)
	got := must[*chaincode.Migration](t, "getting after restart")(orgs[0].GetMigration(ctx, m))
	if got.State != chaincode.StateProposed {
		t.Fatalf("state %s after restart", got.State)
	}
	must[*chaincode.Bid](t, "bidding after restart")(orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	after := collect(t, must[<-chan ledger.Event](t, "resubscribing")(orgs[0].Events(ctx, saved)), id, 2)
	if txs(after[:1]) != txs(before[4:]) || after[1].Type != chaincode.EventBidSubmitted {
		t.Errorf("resumed from %+v after restart: got %s, want %s then a bid", saved, txs(after), txs(before[4:]))
	}
}

// testMembership: an id nobody admitted cannot be registered, not even by the MSP it will
// be admitted for; admission and removal are events; a removed cluster is gone. (Votes
// need a ledger of their own: the contract's tests have them.)
func testMembership(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	events := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Checkpoint{}))
	c := id.cluster("new")
	if _, err := b.Orgs[1].RegisterCluster(ctx, registration(c)); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Fatalf("registering %s before its admission: %v, want %q", c, err, chaincode.CodeForbidden)
	}
	join(t, b, 1, c)
	if _, err := b.Orgs[0].RegisterCluster(ctx, registration(c)); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Errorf("the admin's MSP taking over %s: %v, want %q", c, err, chaincode.CodeForbidden)
	}
	must[*chaincode.Admission](t, "removing")(b.Orgs[1].RemoveCluster(ctx, c, "leaving"))
	if _, err := b.Orgs[0].GetCluster(ctx, c); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("removed cluster: %v, want %q", err, chaincode.CodeNotFound)
	}
	want := []string{chaincode.EventClusterAdmitted, chaincode.EventClusterRegistered, chaincode.EventClusterRemoved}
	if got := types(collect(t, events, id, len(want))); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// testClaimsChecked: the ledger records the bid's score clamped, the coverage it computed
// from the bidder's site, and canHost false when the reported free capacity is short.
func testClaimsChecked(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Cluster](t, "reporting")(b.Orgs[1].ReportCapacity(ctx, id.cluster("c"), chaincode.Resources{CPUMilli: 8000, MemoryBytes: 1 << 30, GPUSlots: 4, GPUMemoryBytes: 32 << 30}))
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, chaincode.BidInput{ClusterID: id.cluster("b"), CanHost: true, Score: 1e300}))
	must[*chaincode.Bid](t, "bidding c")(b.Orgs[1].SubmitBid(ctx, m, chaincode.BidInput{ClusterID: id.cluster("c"), CanHost: true, CoversClient: true, Score: 100}))
	got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m))
	if len(got.Bids) != 2 {
		t.Fatalf("%d bids", len(got.Bids))
	}
	if bb := got.Bids[0]; bb.Score != 100 || !bb.CoversClient || !bb.CanHost {
		t.Errorf("bid of b recorded as %+v, want score 100 covering the client (its site is 300 m away)", bb)
	}
	if bc := got.Bids[1]; bc.CanHost || !strings.Contains(bc.Reason, "memoryBytes") {
		t.Errorf("bid of c recorded as %+v, want canHost false for memory", bc)
	}
	if d := must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m)); d.Decision == nil || d.Decision.Destination != id.cluster("b") {
		t.Errorf("decided %+v, want b", d.Decision)
	}
}

// testNeverZeroCopies: once the destination reported Ready it cannot hand the migration
// back; it stays Ready for its source to complete.
func testNeverZeroCopies(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b", "c")
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 9)))
	must[*chaincode.Bid](t, "bidding c")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("c"), 1)))
	must[*chaincode.Migration](t, "deciding")(b.Orgs[0].Decide(ctx, m))
	must[*chaincode.Migration](t, "ready")(b.Orgs[1].ReportReady(ctx, m, id.cluster("b")))
	if _, err := b.Orgs[1].ReportFailed(ctx, m, id.cluster("b"), "changed my mind"); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Fatalf("ReportFailed after Ready: %v, want %q", err, chaincode.CodeConflict)
	}
	if got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m)); got.State != chaincode.StateReady || got.Decision.Destination != id.cluster("b") {
		t.Errorf("after a refused ReportFailed: %s to %+v, want Ready to b", got.State, got.Decision)
	}
}

// testEventsFromHead: a stream from ledger.Head carries what is committed after it opened,
// none of the history before (a new cluster lists what is open instead).
func testEventsFromHead(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	m := setup(t, b, id, soon, "b")
	// Let the stream catch up with the history first: events of this test before Head would
	// be a replay.
	all := collect(t, must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Checkpoint{})), id, 5)
	head := must[<-chan ledger.Event](t, "subscribing at the head")(b.Orgs[1].Events(ctx, ledger.Head))
	placed := must[*chaincode.Bid](t, "bidding")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	got := collect(t, head, id, 1)
	if got[0].Type != chaincode.EventBidSubmitted || got[0].TxID != placed.TxID {
		t.Errorf("first event from the head: %s, want the bid %s (history: %s)", txs(got), placed.TxID, txs(all))
	}
}

// maxRealWait bounds how long the suite waits out a ledger's dead-after window on a backend
// whose clock it cannot advance (Fabric's is the clients' own).
const maxRealWait = 2 * time.Minute

// silence lets ledger time pass until a cluster that last reported now may be marked dead,
// or skips, saying why, when that is longer than the suite waits in real time.
func silence(t *testing.T, b *Backend) {
	t.Helper()
	cfg := must[*chaincode.LedgerConfig](t, "reading the ledger's configuration")(b.Orgs[0].GetLedgerConfig(ctxFor(t)))
	d := cfg.DeadAfter() + chaincode.MaxClockSkew + time.Second
	if b.Advance == nil && d > maxRealWait {
		t.Skipf("SKIP: the ledger's dead-after window is %s: waiting it out (%s) in real time is more than the suite's %s; set the ledger up with a shorter one (network.sh: FABRIC_DEAD_AFTER_SECONDS)", cfg.DeadAfter(), d, maxRealWait)
	}
	b.wait(d)
}

// migrate carries migration name from the source to dest (Orgs[1]'s) and returns it.
func migrate(t *testing.T, b *Backend, name string, p chaincode.Proposal, dest string, ready bool) *chaincode.Migration {
	t.Helper()
	ctx := ctxFor(t)
	must[*chaincode.Migration](t, "proposing "+name)(b.Orgs[0].ProposeMigration(ctx, p))
	must[*chaincode.Bid](t, "bidding on "+name)(b.Orgs[1].SubmitBid(ctx, p.ID, bid(dest, 1)))
	m := must[*chaincode.Migration](t, "deciding "+name)(b.Orgs[0].Decide(ctx, p.ID))
	if ready {
		m = must[*chaincode.Migration](t, "ready "+name)(b.Orgs[1].ReportReady(ctx, p.ID, dest))
	}
	return m
}

// testDeadClusters: a cluster silent past the dead-after window is marked dead by another
// member; the open migrations that counted on it move on without it (a Proposed one
// excludes it, a Decided one is decided again, a Ready one is left to its source); a dead
// cluster cannot bid; reporting again revives it. Each transition is one event.
func testDeadClusters(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	events := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Head))
	join(t, b, 0, id.cluster("src"))
	join(t, b, 1, id.cluster("b"))
	join(t, b, 1, id.cluster("c"))
	bc, cc := id.cluster("b"), id.cluster("c")
	// p: Proposed, b bid, bids open for long. d: Decided to b, c next. r: Ready at b.
	p := proposal(id.migration("p"), id.cluster("src"), later)
	must[*chaincode.Migration](t, "proposing p")(b.Orgs[0].ProposeMigration(ctx, p))
	must[*chaincode.Bid](t, "b bids on p")(b.Orgs[1].SubmitBid(ctx, p.ID, bid(bc, 1)))
	d := proposal(id.migration("d"), id.cluster("src"), soon)
	must[*chaincode.Migration](t, "proposing d")(b.Orgs[0].ProposeMigration(ctx, d))
	must[*chaincode.Bid](t, "b bids on d")(b.Orgs[1].SubmitBid(ctx, d.ID, bid(bc, 0.9)))
	must[*chaincode.Bid](t, "c bids on d")(b.Orgs[1].SubmitBid(ctx, d.ID, bid(cc, 0.1)))
	if m := must[*chaincode.Migration](t, "deciding d")(b.Orgs[0].Decide(ctx, d.ID)); m.Decision.Destination != bc {
		t.Fatalf("d decided to %s, want %s", m.Decision.Destination, bc)
	}
	r := migrate(t, b, "r", proposal(id.migration("r"), id.cluster("src"), soon), bc, true)
	if _, err := b.Orgs[0].MarkClusterDead(ctx, bc); chaincode.CodeOf(err) != chaincode.CodeNotYet {
		t.Fatalf("marking %s dead at once: %v, want %q", bc, err, chaincode.CodeNotYet)
	}

	silence(t, b)
	must[*chaincode.Cluster](t, "c reports")(b.Orgs[1].ReportCapacity(ctx, cc, registration(cc).Capacity))
	dead := must[*chaincode.Cluster](t, "marking b dead")(b.Orgs[0].MarkClusterDead(ctx, bc))
	if !dead.Dead || dead.DeadSince == "" {
		t.Errorf("marked cluster %+v, want dead", dead)
	}
	if _, err := b.Orgs[0].MarkClusterDead(ctx, bc); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("marking %s dead twice: %v, want %q", bc, err, chaincode.CodeConflict)
	}
	if got := must[*chaincode.Migration](t, "getting p")(b.Orgs[0].GetMigration(ctx, p.ID)); got.State != chaincode.StateProposed || !slices.Equal(got.Excluded, []string{bc}) {
		t.Errorf("p after b died: %s, excluded %v; want Proposed excluding %s", got.State, got.Excluded, bc)
	}
	if got := must[*chaincode.Migration](t, "getting d")(b.Orgs[0].GetMigration(ctx, d.ID)); got.State != chaincode.StateDecided || got.Decision.Destination != cc {
		t.Errorf("d after b died: %s to %+v; want decided again to %s", got.State, got.Decision, cc)
	}
	if got := must[*chaincode.Migration](t, "getting r")(b.Orgs[0].GetMigration(ctx, r.ID)); got.State != chaincode.StateReady || got.Decision.Destination != bc {
		t.Errorf("r after b died: %s to %+v; want still Ready at %s, its source's to end", got.State, got.Decision, bc)
	}
	if _, err := b.Orgs[1].SubmitBid(ctx, p.ID, bid(bc, 1)); chaincode.CodeOf(err) != chaincode.CodeConflict || !strings.Contains(err.Error(), "dead") {
		t.Errorf("a dead cluster bidding: %v, want a conflict saying it is dead", err)
	}
	// The source keeps its copy: it aborts the Ready migration to the dead destination.
	must[*chaincode.Migration](t, "aborting r")(b.Orgs[0].Abort(ctx, r.ID, "destination dead"))
	revived := must[*chaincode.Cluster](t, "b reports again")(b.Orgs[1].ReportCapacity(ctx, bc, registration(bc).Capacity))
	if revived.Dead || revived.DeadSince != "" {
		t.Errorf("cluster after reporting again %+v, want alive", revived)
	}
	want := []string{chaincode.EventCapacityReported, chaincode.EventClusterDead, chaincode.EventMigrationAborted, chaincode.EventClusterRevived}
	evs := collect(t, events, id, 20) // 3 joins (6), p (2), d (4), r (4), then these
	if got := types(evs[len(evs)-len(want):]); !slices.Equal(got, want) {
		t.Errorf("last events %v, want %v", got, want)
	}
	if ev := evs[len(evs)-3]; ev.ClusterID != bc || ev.MSPID != b.MSPs[0] {
		t.Errorf("ClusterDead event %+v, want %s marked by %s", ev, bc, b.MSPs[0])
	}
}

// testHomes: a completed migration records its service's home; a copy elsewhere cannot
// move on; when the home dies its migration's source takes the service back, and the
// dead cluster, when it comes back, is superseded.
func testHomes(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	join(t, b, 0, id.cluster("src"))
	join(t, b, 1, id.cluster("b"))
	src, bc, origin := id.cluster("src"), id.cluster("b"), id.origin()
	if _, err := b.Orgs[0].GetHome(ctx, origin); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Fatalf("home before any migration: %v, want %q", err, chaincode.CodeNotFound)
	}
	p := proposal(id.migration("m1"), src, soon)
	p.Metadata.Origin = origin
	migrate(t, b, "m1", p, bc, true)
	done := must[*chaincode.Migration](t, "completing m1")(b.Orgs[0].Complete(ctx, p.ID))
	h := must[*chaincode.Home](t, "getting the home")(b.Orgs[1].GetHome(ctx, origin))
	if want := (chaincode.Home{Origin: origin, Cluster: bc, MigrationID: p.ID, Source: src, Since: done.History[len(done.History)-1].Time}); *h != want {
		t.Errorf("home %+v, want %+v", *h, want)
	}
	homes := must[[]*chaincode.Home](t, "listing homes")(b.Orgs[0].ListHomes(ctx))
	if !slices.ContainsFunc(homes, func(x *chaincode.Home) bool { return *x == *h }) || !slices.IsSortedFunc(homes, func(x, y *chaincode.Home) int { return strings.Compare(x.Origin, y.Origin) }) {
		t.Errorf("homes %d, sorted %v, want %s's among them in origin order", len(homes), slices.IsSortedFunc(homes, func(x, y *chaincode.Home) int { return strings.Compare(x.Origin, y.Origin) }), origin)
	}
	again := proposal(id.migration("m2"), src, soon)
	again.Metadata.Origin = origin
	if _, err := b.Orgs[0].ProposeMigration(ctx, again); chaincode.CodeOf(err) != chaincode.CodeConflict || !strings.Contains(err.Error(), "homed at "+bc) {
		t.Errorf("the old source moving the service again: %v, want a conflict naming its home", err)
	}
	if _, err := b.Orgs[0].RehomeService(ctx, origin); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("re-homing from a live cluster: %v, want %q", err, chaincode.CodeConflict)
	}

	events := must[<-chan ledger.Event](t, "subscribing")(b.Orgs[0].Events(ctx, ledger.Head))
	silence(t, b)
	must[*chaincode.Cluster](t, "marking b dead")(b.Orgs[0].MarkClusterDead(ctx, bc))
	if _, err := b.Orgs[1].RehomeService(ctx, origin); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Errorf("re-homing by another MSP than the source's: %v, want %q", err, chaincode.CodeForbidden)
	}
	h = must[*chaincode.Home](t, "re-homing")(b.Orgs[0].RehomeService(ctx, origin))
	if h.Cluster != src || h.RehomedFrom != bc || h.Source != "" || h.MigrationID != "" {
		t.Errorf("re-homed %+v, want at %s from %s", *h, src, bc)
	}
	evs := collect(t, events, id, 2)
	if ev := evs[1]; ev.Type != chaincode.EventServiceRehomed || ev.ClusterID != src || ev.Origin != origin || ev.MigrationID != p.ID {
		t.Errorf("event %+v, want ServiceRehomed of %s to %s, put on %s by %s", ev, origin, src, bc, p.ID)
	}
	// b comes back superseded: its copy cannot move on; the source's can.
	must[*chaincode.Cluster](t, "b reports again")(b.Orgs[1].ReportCapacity(ctx, bc, registration(bc).Capacity))
	from := proposal(id.migration("m3"), bc, soon)
	from.Metadata.Origin = origin
	if _, err := b.Orgs[1].ProposeMigration(ctx, from); chaincode.CodeOf(err) != chaincode.CodeConflict {
		t.Errorf("the superseded copy moving on: %v, want %q", err, chaincode.CodeConflict)
	}
	must[*chaincode.Migration](t, "the source moving the service again")(b.Orgs[0].ProposeMigration(ctx, again))
}

// testDeadlineInLedgerTime: the ledger sets the deadline from the proposal's own timestamp
// and window, whatever clock the source has; before it only every live cluster's bid lets
// anyone decide, at it the source decides alone.
func testDeadlineInLedgerTime(t *testing.T, b *Backend, id ids) {
	ctx := ctxFor(t)
	// Long enough for a loaded Fabric network to commit the proposal, a bid and a Decide in it.
	const window = 5 * time.Second
	m := setup(t, b, id, window, "b", "c")
	got := must[*chaincode.Migration](t, "getting")(b.Orgs[0].GetMigration(ctx, m))
	proposed, err := time.Parse(time.RFC3339Nano, got.History[0].Time)
	if err != nil {
		t.Fatal(err)
	}
	if want := proposed.Add(window).UTC().Format(time.RFC3339Nano); got.Deadline != want {
		t.Errorf("deadline %s, want the proposal's time %s plus %s: %s", got.Deadline, got.History[0].Time, window, want)
	}
	must[*chaincode.Bid](t, "bidding b")(b.Orgs[1].SubmitBid(ctx, m, bid(id.cluster("b"), 1)))
	if _, err := b.Orgs[0].Decide(ctx, m); chaincode.CodeOf(err) != chaincode.CodeNotYet {
		t.Fatalf("the source deciding before the deadline: %v, want %q", err, chaincode.CodeNotYet)
	}
	b.wait(window)
	if _, err := b.Orgs[1].Decide(ctx, m); chaincode.CodeOf(err) != chaincode.CodeNotYet {
		t.Errorf("a bidder deciding at the deadline with c silent: %v, want %q", err, chaincode.CodeNotYet)
	}
	if d := must[*chaincode.Migration](t, "the source deciding at the deadline")(b.Orgs[0].Decide(ctx, m)); d.Decision == nil || d.Decision.Destination != id.cluster("b") {
		t.Errorf("decided %+v, want b", d.Decision)
	}
	for _, w := range []int64{0, chaincode.MaxBidTimeoutMillis + 1} {
		p := proposal(id.migration("bad"), id.cluster("src"), 0)
		p.BidTimeoutMillis = w
		if _, err := b.Orgs[0].ProposeMigration(ctx, p); chaincode.CodeOf(err) != chaincode.CodeInvalid {
			t.Errorf("a bid timeout of %d ms: %v, want %q", w, err, chaincode.CodeInvalid)
		}
	}
}
