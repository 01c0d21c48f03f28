package chaincode

import (
	"fmt"
	"slices"
	"strings"
)

// Dead clusters and the homes of services. A cluster silent for longer than
// the ledger's dead-after window may be marked dead by any other member: it stops being
// live, and the open migrations that counted on it move on without it. A completed
// migration records where its service runs (its Home); when that cluster is dead, the
// migration's source takes the service back (RehomeService), and a copy the dead cluster
// still holds when it comes back is superseded: it cannot move on.

// MarkClusterDead marks a cluster silent for longer than the ledger's dead-after window as
// dead; any member may. The caller's MSP must own another registered cluster that is not
// dead; the target must be registered and not dead (else a conflict), and silent since
// LastReportAt + DeadAfter + MaxClockSkew (else not yet: its clock stamped that report).
// In the same transaction, for each open migration in key order: a Proposed one excludes
// the dead cluster; a Decided one excludes it when it bid, and is decided again (like
// ReportFailed) when it was the destination. A Ready one is left to its source, which
// completes or aborts it. The transaction's one event is ClusterDead; the migrations it
// changed record the change in their history.
func MarkClusterDead(st State, clusterID string) (*Cluster, error) {
	if err := validateID("cluster id", clusterID); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	clusters, err := ListClusters(st)
	if err != nil {
		return nil, err
	}
	var target *Cluster
	witness := false
	for _, c := range clusters {
		if c.ID == clusterID {
			target = c
		} else if c.MSPID == tx.msp && !c.Dead {
			witness = true
		}
	}
	if !witness {
		return nil, refuse(CodeForbidden, "MSP %q has no registered cluster, other than %q and not dead, and may not mark clusters dead", tx.msp, clusterID)
	}
	if target == nil {
		return nil, refuse(CodeConflict, "cluster %q is not registered", clusterID)
	}
	if target.Dead {
		return nil, refuse(CodeConflict, "cluster %q is already dead (since %s)", clusterID, target.DeadSince)
	}
	cfg, err := GetLedgerConfig(st)
	switch {
	case CodeOf(err) == CodeNotFound:
		cfg = &LedgerConfig{}
	case err != nil:
		return nil, err
	}
	last, err := parseTime("last report", target.LastReportAt)
	if err != nil {
		return nil, err
	}
	if due := last.Add(cfg.DeadAfter() + MaxClockSkew); tx.time.Before(due) {
		return nil, refuse(CodeNotYet, "cluster %q last reported at %s; it may be marked dead from %s (%s and the clock skew later)",
			clusterID, target.LastReportAt, formatTime(due), cfg.DeadAfter())
	}
	now := formatTime(tx.time)
	target.Dead, target.DeadSince = true, now
	if err := putJSON(st, clusterPrefix+target.ID, target); err != nil {
		return nil, err
	}
	if err := forgetDead(st, tx, clusterID); err != nil {
		return nil, err
	}
	return target, emit(st, Event{Type: EventClusterDead, ClusterID: clusterID, MSPID: tx.msp, TxID: tx.id, Time: now})
}

// forgetDead takes a dead cluster out of every open migration, in key order: the open
// index, then each record alone (a Proposed one's bids stay under their own keys, so
// concurrent bids on other migrations do not conflict with it).
func forgetDead(st State, tx txInfo, dead string) error {
	var ids []string
	err := st.RangeState(openPrefix, prefixEnd(openPrefix), func(key string, _ []byte) error {
		ids = append(ids, strings.TrimPrefix(key, openPrefix))
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing open migrations: %w", err)
	}
	for _, id := range ids {
		m, err := getJSON[Migration](st, migrationPrefix+id, "migration", id)
		if err != nil {
			return err
		}
		if m.Source == dead || slices.Contains(m.Excluded, dead) {
			continue
		}
		event, note := "", dead+": marked dead"
		switch {
		case m.State == StateProposed:
			event = EventClusterDead
		case m.State == StateDecided && m.Decision != nil && m.Decision.Destination == dead:
			event = EventDestinationFailed
		case m.State == StateDecided && slices.ContainsFunc(m.Bids, func(b Bid) bool { return b.ClusterID == dead }):
			event = EventClusterDead
		default:
			continue
		}
		i, _ := slices.BinarySearch(m.Excluded, dead)
		m.Excluded = slices.Insert(m.Excluded, i, dead)
		if event == EventDestinationFailed {
			choose(m, tx)
		}
		if err := writeMigration(st, tx, m, event, note); err != nil {
			return err
		}
	}
	return nil
}

// RehomeService moves the service of origin back to the source of the migration that put it
// on a cluster now dead; only that source may. The source scales its parked copy up; the
// dead cluster, when it comes back, finds the service homed elsewhere and stands its copy
// down. A destination since removed from the ledger counts as dead.
func RehomeService(st State, origin string) (*Home, error) {
	if err := ValidateOrigin(origin); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	h, err := GetHome(st, origin)
	if err != nil {
		return nil, err
	}
	if h.Source == "" {
		return nil, refuse(CodeConflict, "the service of %q was re-homed to %s already (from %s)", origin, h.Cluster, h.RehomedFrom)
	}
	if _, err := ownedCluster(st, tx, h.Source, "re-home services"); err != nil {
		return nil, err
	}
	at, err := GetCluster(st, h.Cluster)
	switch {
	case CodeOf(err) == CodeNotFound:
	case err != nil:
		return nil, err
	case !at.Dead:
		return nil, refuse(CodeConflict, "the service of %q is homed at %s, which is not dead", origin, h.Cluster)
	}
	now := formatTime(tx.time)
	rehomed := &Home{Origin: origin, Cluster: h.Source, RehomedFrom: h.Cluster, Since: now}
	if err := putJSON(st, homePrefix+origin, rehomed); err != nil {
		return nil, err
	}
	return rehomed, emit(st, Event{Type: EventServiceRehomed, ClusterID: rehomed.Cluster, Origin: origin, MigrationID: h.MigrationID,
		MSPID: tx.msp, TxID: tx.id, Time: now})
}

// checkHomedAt refuses, as a conflict, to act for origin from a cluster other than its home:
// a copy that was superseded never moves on. A service without a home yet (never migrated,
// or no origin) may move from anywhere.
func checkHomedAt(st State, origin, cluster, action string) error {
	if origin == "" {
		return nil
	}
	h, err := GetHome(st, origin)
	switch {
	case CodeOf(err) == CodeNotFound:
		return nil
	case err != nil:
		return err
	case h.Cluster != cluster:
		return refuse(CodeConflict, "the service of %q is homed at %s, not %s, which may not %s: its copy there was superseded", origin, h.Cluster, cluster, action)
	}
	return nil
}

// GetHome returns where the service of origin runs, per the ledger.
func GetHome(st State, origin string) (*Home, error) {
	if err := ValidateOrigin(origin); err != nil {
		return nil, err
	}
	h, err := getJSON[Home](st, homePrefix+origin, "home of origin", origin)
	if CodeOf(err) == CodeNotFound {
		return nil, refuse(CodeNotFound, "no home for origin %q: no migration of it completed", truncate(origin))
	}
	return h, err
}

// ListHomes returns every service's home, sorted by origin.
func ListHomes(st State) ([]*Home, error) { return listJSON[Home](st, homePrefix, "homes") }
