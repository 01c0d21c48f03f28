package chaincode

import (
	"fmt"
	"strings"
)

// Bounded state: a proposal nobody carries through expires, and a finished migration is
// deleted after RetentionWindow, so that neither a spamming member nor time grows every
// cluster's resync. On Fabric the block history keeps every transaction; only the world
// state is bounded.

// Finished is a final migration in the closed index.
type Finished struct {
	ID string `json:"id"`
	// FinishedAt is when it became final (RFC 3339).
	FinishedAt string `json:"finishedAt"`
}

// ListFinishedMigrations returns the final migrations still on the ledger, ordered by id.
func ListFinishedMigrations(st State) ([]Finished, error) {
	out := []Finished{}
	err := st.RangeState(closedPrefix, prefixEnd(closedPrefix), func(key string, value []byte) error {
		out = append(out, Finished{ID: strings.TrimPrefix(key, closedPrefix), FinishedAt: string(value)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing finished migrations: %w", err)
	}
	return out, nil
}

// memberOrAdmin refuses callers that neither own a registered cluster nor are the admin.
func memberOrAdmin(st State, tx txInfo, action string) error {
	if admin, err := isAdmin(st, tx); err != nil || admin {
		return err
	}
	clusters, err := ListClusters(st)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if c.MSPID == tx.msp {
			return nil
		}
	}
	return refuse(CodeForbidden, "MSP %q has no registered cluster and may not %s", tx.msp, action)
}

// ExpireMigration ends a migration still Proposed or Decided ExpiryGrace (and MaxClockSkew)
// after its deadline; any member may. Its state becomes Aborted, so a destination that
// started a copy removes it, and the source keeps the service. A member that stamps its
// transaction early can only end, sooner, a migration its source may propose again.
func ExpireMigration(st State, migrationID string) (*Migration, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	if err := memberOrAdmin(st, tx, "expire migrations"); err != nil {
		return nil, err
	}
	m, err := migrationInState(st, migrationID, "expire", StateProposed, StateDecided)
	if err != nil {
		return nil, err
	}
	deadline, err := parseTime("deadline", m.Deadline)
	if err != nil {
		return nil, err
	}
	if due := deadline.Add(ExpiryGrace + MaxClockSkew); tx.time.Before(due) {
		return nil, refuse(CodeNotYet, "migration %q may be expired from %s (its deadline, %s later)", m.ID, formatTime(due), ExpiryGrace+MaxClockSkew)
	}
	m.State = StateAborted
	m.StateReason = fmt.Sprintf("expired: still %s %s after its deadline", m.History[len(m.History)-1].State, ExpiryGrace)
	return m, commitMigration(st, tx, m, EventMigrationExpired, m.StateReason)
}

// CompactMigration deletes a final migration and its bids RetentionWindow (and
// MaxClockSkew) after it ended; any member may. Open migrations are never touched.
func CompactMigration(st State, migrationID string) (*Finished, error) {
	if err := validateID("migration id", migrationID); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	if err := memberOrAdmin(st, tx, "compact migrations"); err != nil {
		return nil, err
	}
	ended, err := st.GetState(closedPrefix + migrationID)
	if err != nil {
		return nil, fmt.Errorf("reading the closed index of %s: %w", migrationID, err)
	}
	if ended == nil {
		if _, err := GetMigration(st, migrationID); err != nil {
			return nil, err
		}
		return nil, refuse(CodeConflict, "migration %q is not final and cannot be compacted", migrationID)
	}
	at, err := parseTime("end time", string(ended))
	if err != nil {
		return nil, err
	}
	if due := at.Add(RetentionWindow + MaxClockSkew); tx.time.Before(due) {
		return nil, refuse(CodeNotYet, "migration %q may be compacted from %s", migrationID, formatTime(due))
	}
	keys := []string{migrationPrefix + migrationID, closedPrefix + migrationID}
	prefix := bidPrefix + migrationID + "/"
	err = st.RangeState(prefix, prefixEnd(prefix), func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading bids of migration %s: %w", migrationID, err)
	}
	for _, k := range keys {
		if err := st.DelState(k); err != nil {
			return nil, fmt.Errorf("deleting %s: %w", k, err)
		}
	}
	f := &Finished{ID: migrationID, FinishedAt: string(ended)}
	return f, emit(st, Event{Type: EventMigrationCompacted, MigrationID: migrationID, MSPID: tx.msp, TxID: tx.id, Time: formatTime(tx.time)})
}
