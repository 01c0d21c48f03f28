package chaincode

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is what a transaction sees of the ledger. Reads see the state committed before the
// transaction (as on Fabric: a transaction does not read its own writes), and nothing is
// written unless the transaction function returns no error.
type State interface {
	GetState(key string) ([]byte, error)
	PutState(key string, value []byte) error
	DelState(key string) error
	// RangeState calls fn for every key in [startKey, endKey), in key order.
	RangeState(startKey, endKey string, fn func(key string, value []byte) error) error
	TxID() string
	// TxTimestamp is the time the client stamped on the transaction: the contract's only clock.
	TxTimestamp() (time.Time, error)
	// CallerMSPID is the MSP of the identity that signed the transaction.
	CallerMSPID() (string, error)
	// SetEvent sets the transaction's one event.
	SetEvent(name string, payload []byte) error
}

// Key prefixes. '0' follows '/', so [prefix, prefix with '/' replaced by '0') spans a prefix.
const (
	clusterPrefix   = "cluster/"
	migrationPrefix = "migration/"
	// openPrefix indexes migrations that are not final, so listing them stays cheap.
	openPrefix = "open/"
	// closedPrefix indexes final migrations by id (the value is when they ended), so
	// compaction finds them without reading every migration.
	closedPrefix    = "closed/"
	bidPrefix       = "bid/"
	admissionPrefix = "admission/"
	// homePrefix keys each service's Home by its origin.
	homePrefix = "home/"
	configKey  = "config/ledger"
)

func prefixEnd(prefix string) string { return strings.TrimSuffix(prefix, "/") + "0" }

// txInfo is what every transition records about its transaction.
type txInfo struct {
	id   string
	time time.Time
	msp  string
}

func begin(st State) (txInfo, error) {
	t, err := st.TxTimestamp()
	if err != nil {
		return txInfo{}, fmt.Errorf("reading transaction timestamp: %w", err)
	}
	msp, err := st.CallerMSPID()
	if err != nil {
		return txInfo{}, fmt.Errorf("reading caller's MSP id: %w", err)
	}
	if msp == "" {
		return txInfo{}, refuse(CodeForbidden, "caller has no MSP id")
	}
	return txInfo{id: st.TxID(), time: t, msp: msp}, nil
}

func getJSON[T any](st State, key, what, id string) (*T, error) {
	data, err := st.GetState(key)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, id, err)
	}
	if data == nil {
		return nil, refuse(CodeNotFound, "%s %q does not exist", what, id)
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", what, id, err)
	}
	return v, nil
}

func putJSON(st State, key string, v any) error {
	data, err := marshal(v)
	if err != nil {
		return err
	}
	if err := st.PutState(key, data); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

func emit(st State, ev Event) error {
	data, err := marshal(ev)
	if err != nil {
		return err
	}
	if err := st.SetEvent(ev.Type, data); err != nil {
		return fmt.Errorf("setting event %s: %w", ev.Type, err)
	}
	return nil
}

// GetCluster returns a registered cluster.
func GetCluster(st State, id string) (*Cluster, error) {
	if err := validateID("cluster id", id); err != nil {
		return nil, err
	}
	return getJSON[Cluster](st, clusterPrefix+id, "cluster", id)
}

// ListClusters returns every registered cluster, ordered by id.
func ListClusters(st State) ([]*Cluster, error) {
	return listJSON[Cluster](st, clusterPrefix, "clusters")
}

// listJSON decodes every value under prefix, in key order; never nil, so that an empty list
// encodes as [].
func listJSON[T any](st State, prefix, what string) ([]*T, error) {
	out := []*T{}
	err := st.RangeState(prefix, prefixEnd(prefix), func(key string, value []byte) error {
		v := new(T)
		if err := json.Unmarshal(value, v); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	return out, nil
}

// GetMigration returns a migration.
func GetMigration(st State, id string) (*Migration, error) {
	if err := validateID("migration id", id); err != nil {
		return nil, err
	}
	m, err := getJSON[Migration](st, migrationPrefix+id, "migration", id)
	if err != nil {
		return nil, err
	}
	return m, loadBids(st, m)
}

// ListOpenMigrations returns the migrations that are not final, ordered by id.
func ListOpenMigrations(st State) ([]*Migration, error) {
	var ids []string
	err := st.RangeState(openPrefix, prefixEnd(openPrefix), func(key string, _ []byte) error {
		ids = append(ids, strings.TrimPrefix(key, openPrefix))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing open migrations: %w", err)
	}
	out := make([]*Migration, 0, len(ids))
	for _, id := range ids {
		m, err := GetMigration(st, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ownedCluster returns the cluster after checking that the caller's MSP registered it.
func ownedCluster(st State, tx txInfo, id, action string) (*Cluster, error) {
	c, err := GetCluster(st, id)
	if err != nil {
		return nil, err
	}
	if c.MSPID != tx.msp {
		return nil, refuse(CodeForbidden, "MSP %q may not %s for cluster %q, which belongs to MSP %q", tx.msp, action, id, c.MSPID)
	}
	return c, nil
}

// RegisterCluster records a cluster admitted for the caller's MSP (see AdmitCluster); the
// same MSP may register it again to update its location and capacity. An id nobody
// admitted is refused: the first to come no longer wins it.
func RegisterCluster(st State, r ClusterRegistration) (*Cluster, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	if err := checkAdmitted(st, r.ID, tx.msp); err != nil {
		return nil, err
	}
	now := formatTime(tx.time)
	c := &Cluster{ID: r.ID, MSPID: tx.msp, Location: r.Location, CoverageRadiusM: r.CoverageRadiusM,
		Capacity: r.Capacity, Endpoint: r.Endpoint, Free: r.Capacity, RegisteredAt: now, LastReportAt: now}
	old, err := GetCluster(st, r.ID)
	switch {
	case CodeOf(err) == CodeNotFound:
	case err != nil:
		return nil, err
	case old.MSPID != tx.msp:
		return nil, refuse(CodeForbidden, "cluster %q is registered by MSP %q, not %q", r.ID, old.MSPID, tx.msp)
	default:
		c.RegisteredAt, c.Free = old.RegisteredAt, old.Free
	}
	event := EventClusterRegistered
	if old != nil && old.Dead {
		// c is built afresh, so Dead and DeadSince are cleared.
		event = EventClusterRevived
	}
	if err := putJSON(st, clusterPrefix+c.ID, c); err != nil {
		return nil, err
	}
	return c, emit(st, Event{Type: event, ClusterID: c.ID, MSPID: tx.msp, TxID: tx.id, Time: now})
}

// ReportCapacity records a cluster's free resources; it also keeps the cluster live.
func ReportCapacity(st State, clusterID string, free Resources) (*Cluster, error) {
	if err := validateResources("free", free); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	c, err := ownedCluster(st, tx, clusterID, "report capacity")
	if err != nil {
		return nil, err
	}
	c.Free, c.LastReportAt = free, formatTime(tx.time)
	event := EventCapacityReported
	if c.Dead {
		// Reporting again is the cluster's word that it is back: one event for the transition.
		c.Dead, c.DeadSince, event = false, "", EventClusterRevived
	}
	if err := putJSON(st, clusterPrefix+c.ID, c); err != nil {
		return nil, err
	}
	return c, emit(st, Event{Type: event, ClusterID: c.ID, MSPID: tx.msp, TxID: tx.id, Time: c.LastReportAt})
}

// ProposeMigration records a migration request; only the source cluster's MSP may. Its
// deadline is the proposal's timestamp plus its bid timeout: the source stamps both it and
// its early Decide, so no other clock enters. A service homed at another cluster than the
// source (re-homed away from it while it was cut off) is refused: a superseded copy never
// moves on.
func ProposeMigration(st State, p Proposal) (*Migration, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	if _, err := ownedCluster(st, tx, p.Source, "propose migrations"); err != nil {
		return nil, err
	}
	existing, err := st.GetState(migrationPrefix + p.ID)
	if err != nil {
		return nil, fmt.Errorf("reading migration %s: %w", p.ID, err)
	}
	if existing != nil {
		return nil, refuse(CodeConflict, "migration %q already exists", p.ID)
	}
	if err := checkHomedAt(st, p.Metadata.Origin, p.Source, "propose its migration"); err != nil {
		return nil, err
	}
	deadline := tx.time.Add(time.Duration(p.BidTimeoutMillis) * time.Millisecond)
	m := &Migration{ID: p.ID, Source: p.Source, Workload: p.Workload, Metadata: p.Metadata, BundleDigest: p.BundleDigest,
		Reason: p.Reason, ClientLocation: p.ClientLocation, Deadline: formatTime(deadline), State: StateProposed}
	return m, commitMigration(st, tx, m, EventMigrationProposed, "")
}

// commitMigration appends the transition to the history, writes the migration and its open
// index entry, and emits the event.
func commitMigration(st State, tx txInfo, m *Migration, event, note string) error {
	if err := writeMigration(st, tx, m, event, note); err != nil {
		return err
	}
	ev := Event{Type: event, MigrationID: m.ID, State: m.State, MSPID: tx.msp, TxID: tx.id, Time: formatTime(tx.time)}
	if m.Decision != nil {
		ev.Destination = m.Decision.Destination
	}
	return emit(st, ev)
}

// writeMigration is commitMigration without the event: a transaction that changes several
// migrations (MarkClusterDead) has one event of its own, as Fabric allows one per transaction.
func writeMigration(st State, tx txInfo, m *Migration, event, note string) error {
	now := formatTime(tx.time)
	m.History = append(m.History, HistoryEntry{Event: event, State: m.State, MSPID: tx.msp, TxID: tx.id, Time: now, Note: note})
	if err := putJSON(st, migrationPrefix+m.ID, m); err != nil {
		return err
	}
	var err error
	if m.Final() {
		if err = st.DelState(openPrefix + m.ID); err == nil {
			err = st.PutState(closedPrefix+m.ID, []byte(now))
		}
	} else {
		// Fabric treats an empty value as a delete, so the index holds the state.
		err = st.PutState(openPrefix+m.ID, []byte(m.State))
	}
	if err != nil {
		return fmt.Errorf("indexing migration %s: %w", m.ID, err)
	}
	return nil
}

func migrationInState(st State, id, action string, states ...string) (*Migration, error) {
	m, err := GetMigration(st, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(states, m.State) {
		return nil, refuse(CodeConflict, "cannot %s migration %q in state %s (needs %s)", action, id, m.State, strings.Join(states, " or "))
	}
	return m, nil
}

// SubmitBid records a cluster's bid for a Proposed migration; only the bidder's MSP may, and
// a second bid from the same cluster replaces the first (so a retry is harmless). Each bid
// has its own key and SubmitBid reads no other bid, so that bids from different clusters in
// one Fabric block do not conflict.
func SubmitBid(st State, migrationID string, b BidInput) (*Bid, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	bidder, err := ownedCluster(st, tx, b.ClusterID, "bid")
	if err != nil {
		return nil, err
	}
	if bidder.Dead {
		return nil, refuse(CodeConflict, "cluster %q is marked dead (since %s); report capacity first", bidder.ID, bidder.DeadSince)
	}
	if !live(bidder, tx.time) {
		return nil, refuse(CodeConflict, "cluster %q is not live (last report %s, more than %s before this bid); report capacity first", bidder.ID, bidder.LastReportAt, LiveWindow+MaxClockSkew)
	}
	// The record alone: reading the other bids would be a range read that bids committed
	// in the same block invalidate (a phantom read).
	m, err := getJSON[Migration](st, migrationPrefix+migrationID, "migration", migrationID)
	if err != nil {
		return nil, err
	}
	if m.State != StateProposed {
		return nil, refuse(CodeConflict, "cannot bid on migration %q in state %s (needs %s)", m.ID, m.State, StateProposed)
	}
	if b.ClusterID == m.Source {
		return nil, refuse(CodeInvalid, "cluster %q is the source of migration %q and cannot bid on it", b.ClusterID, m.ID)
	}
	now := formatTime(tx.time)
	bid := checkBid(m, bidder, b)
	bid.TxID, bid.SubmittedAt = tx.id, now
	if err := putJSON(st, bidKey(m.ID, b.ClusterID), bid); err != nil {
		return nil, err
	}
	return bid, emit(st, Event{Type: EventBidSubmitted, MigrationID: m.ID, ClusterID: b.ClusterID, State: m.State, MSPID: tx.msp, TxID: tx.id, Time: now})
}

// checkBid records what the ledger can check itself rather than the bidder's claims: the
// score clamped to [0, 100]; coverage computed from the bidder's registered site and radius
// (the bid's CoversClient is ignored); and canHost false when the free capacity the bidder
// last reported is below the workload's demand, replicas times one replica's, in any
// dimension.
func checkBid(m *Migration, bidder *Cluster, b BidInput) *Bid {
	bid := &Bid{ClusterID: b.ClusterID, CanHost: b.CanHost, Score: min(max(b.Score, 0), 100), Reason: b.Reason}
	if m.ClientLocation != nil {
		bid.CoversClient = covers(bidder.Location, bidder.CoverageRadiusM, *m.ClientLocation)
	}
	if bid.CanHost {
		if why := shortOf(bidder.Free, m.Metadata); why != "" {
			bid.CanHost, bid.Reason = false, why
		}
	}
	return bid
}

// shortOf says in which dimension free is below the demand of the metadata's replicas
// (at least one), or "" when it suffices.
func shortOf(free Resources, md WorkloadMetadata) string {
	replicas := int64(max(md.Replicas, 1))
	for _, q := range []struct {
		name       string
		per, avail int64
	}{{"cpuMilli", md.CPUMilli, free.CPUMilli}, {"memoryBytes", md.MemoryBytes, free.MemoryBytes},
		{"gpuSlots", md.GPUSlots, free.GPUSlots}, {"gpuMemoryBytes", md.GPUMemoryBytes, free.GPUMemoryBytes}} {
		// Compared by division, so replicas × per-replica cannot overflow.
		if q.per > 0 && q.avail/q.per < replicas {
			return fmt.Sprintf("the ledger's record of free capacity: %s %d free, %d replicas need %d each", q.name, q.avail, replicas, q.per)
		}
	}
	return ""
}

func bidKey(migrationID, clusterID string) string {
	return bidPrefix + migrationID + "/" + clusterID
}

// loadBids fills in the bids of a Proposed migration from their keys, in cluster id order.
// Decide copies them into the migration record, after which no bid is accepted.
func loadBids(st State, m *Migration) error {
	if m.State != StateProposed {
		return nil
	}
	prefix := bidPrefix + m.ID + "/"
	m.Bids = nil
	err := st.RangeState(prefix, prefixEnd(prefix), func(key string, value []byte) error {
		var b Bid
		if err := json.Unmarshal(value, &b); err != nil {
			return fmt.Errorf("decoding %s: %w", key, err)
		}
		m.Bids = append(m.Bids, b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading bids of migration %s: %w", m.ID, err)
	}
	return nil
}

// Decide picks the destination of a Proposed migration once every cluster that was live
// when it was proposed (other than the source, and not marked dead since) has bid, which
// any MSP with a registered cluster may establish; or, before that, once its deadline has
// passed: only the source may decide early. The set waited for is fixed by the proposal's
// time, so no member can shrink it by stamping its own transaction late; the deadline is
// the source's proposal timestamp plus its bid timeout, and the source stamps its own
// Decide, so the comparison is in one clock, and no other member can end the bidding by
// stamping its transaction past it.
func Decide(st State, migrationID string) (*Migration, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	m, err := migrationInState(st, migrationID, "decide", StateProposed)
	if err != nil {
		return nil, err
	}
	clusters, err := ListClusters(st)
	if err != nil {
		return nil, err
	}
	if len(m.History) == 0 {
		return nil, fmt.Errorf("migration %s has no history", m.ID)
	}
	proposedAt, err := parseTime("proposal time", m.History[0].Time)
	if err != nil {
		return nil, err
	}
	member, source := false, false
	var missing []string
	for _, c := range clusters {
		member = member || c.MSPID == tx.msp
		source = source || (c.ID == m.Source && c.MSPID == tx.msp)
		if c.ID == m.Source || !live(c, proposedAt) {
			continue
		}
		if _, found := slices.BinarySearchFunc(m.Bids, c.ID, func(x Bid, id string) int { return strings.Compare(x.ClusterID, id) }); !found {
			missing = append(missing, c.ID)
		}
	}
	if !member {
		return nil, refuse(CodeForbidden, "MSP %q has no registered cluster and may not decide", tx.msp)
	}
	deadline, err := parseTime("deadline", m.Deadline)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 && (!source || tx.time.Before(deadline)) {
		return nil, refuse(CodeNotYet, "migration %q is waiting for bids from %s until its deadline %s (after which its source decides)", m.ID, strings.Join(missing, ", "), m.Deadline)
	}
	choose(m, tx)
	return m, commitMigration(st, tx, m, EventMigrationDecided, "")
}

// live reports whether a cluster registered or reported within LiveWindow (and
// MaxClockSkew, since its clock stamped the report) before now. A cluster marked dead is
// not live until it registers or reports again.
func live(c *Cluster, now time.Time) bool {
	t, err := time.Parse(time.RFC3339Nano, c.LastReportAt)
	return err == nil && !c.Dead && !t.Before(now.Add(-LiveWindow-MaxClockSkew))
}

// choose sets the decision: among the bids that can host, cover the client when the client
// moved, and are not excluded, the highest score, ties to the lowest cluster id. Bids are
// sorted by cluster id, so a strict comparison keeps the lowest id on ties whatever the
// order bids arrived in.
func choose(m *Migration, tx txInfo) {
	var best *Bid
	for i := range m.Bids {
		b := &m.Bids[i]
		if !b.CanHost || (m.Reason == ReasonClientMobility && !b.CoversClient) || slices.Contains(m.Excluded, b.ClusterID) {
			continue
		}
		if best == nil || b.Score > best.Score {
			best = b
		}
	}
	if best == nil {
		m.State, m.Decision = StateRejected, nil
		m.StateReason = fmt.Sprintf("none of %d bids can host the service", len(m.Bids))
		if m.Reason == ReasonClientMobility {
			m.StateReason = fmt.Sprintf("none of %d bids can host the service and cover the client", len(m.Bids))
		}
		return
	}
	m.State, m.StateReason = StateDecided, ""
	m.Decision = &Decision{Destination: best.ClusterID, Score: best.Score, TxID: tx.id, DecidedAt: formatTime(tx.time)}
}

func destinationAction(st State, tx txInfo, migrationID, clusterID, action string, states ...string) (*Migration, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	if _, err := ownedCluster(st, tx, clusterID, action); err != nil {
		return nil, err
	}
	m, err := migrationInState(st, migrationID, action, states...)
	if err != nil {
		return nil, err
	}
	if m.Decision == nil || m.Decision.Destination != clusterID {
		return nil, refuse(CodeForbidden, "cluster %q is not the destination of migration %q", clusterID, m.ID)
	}
	return m, nil
}

// ReportReady records that the destination runs the service and it is ready.
func ReportReady(st State, migrationID, clusterID string) (*Migration, error) {
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	m, err := destinationAction(st, tx, migrationID, clusterID, "report ready", StateDecided)
	if err != nil {
		return nil, err
	}
	m.State = StateReady
	return m, commitMigration(st, tx, m, EventMigrationReady, "")
}

// ReportFailed records that the destination could not run the service: it is excluded and
// the next best bid is chosen at once (or the migration is rejected). Once the destination
// reported Ready it is refused: the source may already be removing its own copy, and a new
// decision (or a rejection) would leave no copy anywhere. From Ready the migration only
// completes, or the source aborts it while its own copy still serves.
func ReportFailed(st State, migrationID, clusterID, reason string) (*Migration, error) {
	if err := validateText("failure reason", reason, MaxTextLength); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	m, err := destinationAction(st, tx, migrationID, clusterID, "report failure", StateDecided, StateReady)
	if err != nil {
		return nil, err
	}
	if m.State == StateReady {
		return nil, refuse(CodeConflict, "cannot report failure of migration %q after reporting it Ready: the source may be removing its copy; only the source completes or aborts it now", m.ID)
	}
	i, _ := slices.BinarySearch(m.Excluded, clusterID)
	m.Excluded = slices.Insert(m.Excluded, i, clusterID)
	choose(m, tx)
	return m, commitMigration(st, tx, m, EventDestinationFailed, clusterID+": "+reason)
}

func sourceAction(st State, tx txInfo, migrationID, action string, states ...string) (*Migration, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	m, err := GetMigration(st, migrationID)
	if err != nil {
		return nil, err
	}
	if _, err := ownedCluster(st, tx, m.Source, action); err != nil {
		return nil, err
	}
	return migrationInState(st, migrationID, action, states...)
}

// Complete records that the source has handed the service over; only the source's MSP may.
// The service's home becomes the destination. A source whose service was re-homed away
// from it meanwhile (it was cut off, and another copy serves now) is refused, and aborts,
// unless the cluster that took the service back is this migration's destination.
func Complete(st State, migrationID string) (*Migration, error) {
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	m, err := sourceAction(st, tx, migrationID, "complete", StateReady)
	if err != nil {
		return nil, err
	}
	// A source re-homed away from while it was cut off completes only when the service
	// was taken back by this migration's destination itself (its copy is the home's).
	if err := checkHomedAt(st, m.Metadata.Origin, m.Source, "complete its migration"); err != nil &&
		checkHomedAt(st, m.Metadata.Origin, m.Decision.Destination, "") != nil {
		return nil, err
	}
	m.State = StateCompleted
	if o := m.Metadata.Origin; o != "" {
		h := &Home{Origin: o, Cluster: m.Decision.Destination, MigrationID: m.ID, Source: m.Source, Since: formatTime(tx.time)}
		if err := putJSON(st, homePrefix+o, h); err != nil {
			return nil, err
		}
	}
	return m, commitMigration(st, tx, m, EventMigrationCompleted, "")
}

// Abort ends a migration that is not final; only the source's MSP may. A destination that
// already started the service removes it on the event. After Ready the source aborts only
// while its own copy still serves (it has not started removing it): that is the source's
// rule to keep, as the ledger cannot see its copy. That includes a Ready migration whose
// destination was marked dead: the source verifies the destination before removing its
// copy, and keeps it when it cannot.
func Abort(st State, migrationID, reason string) (*Migration, error) {
	if err := validateText("abort reason", reason, MaxTextLength); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	m, err := sourceAction(st, tx, migrationID, "abort", StateProposed, StateDecided, StateReady)
	if err != nil {
		return nil, err
	}
	m.State, m.StateReason = StateAborted, reason
	return m, commitMigration(st, tx, m, EventMigrationAborted, reason)
}
