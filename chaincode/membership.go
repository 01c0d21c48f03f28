package chaincode

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Membership: a cluster id is granted to an MSP before that MSP may register it. The
// ledger's admin MSP, named once when the ledger is set up (InitLedger: the embedded
// ledger's Options, Fabric's init transaction), admits on its own; otherwise more than half
// of the member MSPs (those with a registered cluster) must vote for the same admission.

// GetLedgerConfig returns the ledger's configuration; not found before InitLedger.
func GetLedgerConfig(st State) (*LedgerConfig, error) {
	return getJSON[LedgerConfig](st, configKey, "ledger configuration", "")
}

// InitLedger names the admin MSP. It runs once, when the ledger is set up (on Fabric as
// the chaincode's init transaction); running it again with the same configuration is a
// no-op that succeeds, with another is refused.
func InitLedger(st State, cfg LedgerConfig) (*LedgerConfig, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	old, err := GetLedgerConfig(st)
	switch {
	case CodeOf(err) == CodeNotFound:
	case err != nil:
		return nil, err
	case *old != cfg:
		return nil, refuse(CodeConflict, "the ledger is already set up with admin MSP %q and dead-after %d s", old.AdminMSP, old.DeadAfterSeconds)
	}
	if err := putJSON(st, configKey, &cfg); err != nil {
		return nil, err
	}
	return &cfg, emit(st, Event{Type: EventLedgerInitialised, MSPID: tx.msp, TxID: tx.id, Time: formatTime(tx.time)})
}

// GetAdmission returns the admission of a cluster id.
func GetAdmission(st State, clusterID string) (*Admission, error) {
	if err := validateID("cluster id", clusterID); err != nil {
		return nil, err
	}
	return getJSON[Admission](st, admissionPrefix+clusterID, "admission of cluster", clusterID)
}

// ListAdmissions returns every admission, granted or gathering votes, ordered by cluster id.
func ListAdmissions(st State) ([]*Admission, error) {
	return listJSON[Admission](st, admissionPrefix, "admissions")
}

// members returns the MSPs with a registered (hence admitted) cluster, sorted and unique.
func members(st State) ([]string, error) {
	clusters, err := ListClusters(st)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range clusters {
		if i, found := slices.BinarySearch(out, c.MSPID); !found {
			out = slices.Insert(out, i, c.MSPID)
		}
	}
	return out, nil
}

// isAdmin reports whether the caller is the ledger's admin MSP.
func isAdmin(st State, tx txInfo) (bool, error) {
	cfg, err := GetLedgerConfig(st)
	if CodeOf(err) == CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return cfg.AdminMSP == tx.msp, nil
}

// AdmitCluster grants a cluster id to an MSP. The admin MSP admits at once; a member MSP's
// call is a vote (its later vote replaces its earlier one), and the id is granted to an
// MSP once more than half of the member MSPs vote for that MSP. An id already admitted is
// refused: RemoveCluster frees it first.
func AdmitCluster(st State, in AdmissionInput) (*Admission, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	admin, err := isAdmin(st, tx)
	if err != nil {
		return nil, err
	}
	mem, err := members(st)
	if err != nil {
		return nil, err
	}
	if _, member := slices.BinarySearch(mem, tx.msp); !admin && !member {
		return nil, refuse(CodeForbidden, "MSP %q is neither the ledger's admin nor a member and may not admit clusters", tx.msp)
	}
	a, err := GetAdmission(st, in.ClusterID)
	switch {
	case CodeOf(err) == CodeNotFound:
		a = &Admission{ClusterID: in.ClusterID, MSPID: in.MSPID}
	case err != nil:
		return nil, err
	case a.Admitted:
		return nil, refuse(CodeConflict, "cluster %q is already admitted for MSP %q", in.ClusterID, a.MSPID)
	}
	a.MSPID, a.TxID, a.Time = in.MSPID, tx.id, formatTime(tx.time)
	event := EventAdmissionVoted
	if !admin {
		v := Vote{Voter: tx.msp, MSPID: in.MSPID}
		i, found := slices.BinarySearchFunc(a.Votes, tx.msp, func(x Vote, voter string) int { return strings.Compare(x.Voter, voter) })
		if found {
			a.Votes[i] = v
		} else {
			a.Votes = slices.Insert(a.Votes, i, v)
		}
	}
	switch {
	case admin:
		a.Admitted, a.AdmittedBy, a.Votes, event = true, tx.msp, nil, EventClusterAdmitted
	case votesFor(a.Votes, mem, in.MSPID)*2 > len(mem):
		a.Admitted, a.AdmittedBy, a.Votes, event = true, "majority", nil, EventClusterAdmitted
	}
	if err := putJSON(st, admissionPrefix+a.ClusterID, a); err != nil {
		return nil, err
	}
	return a, emit(st, Event{Type: event, ClusterID: a.ClusterID, MSPID: tx.msp, TxID: tx.id, Time: a.Time})
}

// votesFor counts the votes for msp of current members: a vote by an MSP removed since lapses.
func votesFor(votes []Vote, members []string, msp string) int {
	n := 0
	for _, v := range votes {
		if _, found := slices.BinarySearch(members, v.Voter); found && v.MSPID == msp {
			n++
		}
	}
	return n
}

// NotAdmitted is in the refusal of a registration whose id nobody admitted yet: the caller
// may wait for its admission (CodeOf says forbidden, as for any other MSP's id).
const NotAdmitted = "is not admitted"

// checkAdmitted refuses a registration of a cluster id not admitted for msp.
func checkAdmitted(st State, clusterID, msp string) error {
	a, err := GetAdmission(st, clusterID)
	if CodeOf(err) == CodeNotFound || (err == nil && !a.Admitted) {
		return refuse(CodeForbidden, "cluster %q %s: the ledger's admin MSP or a majority of its members must AdmitCluster it for MSP %q first", clusterID, NotAdmitted, msp)
	}
	if err != nil {
		return err
	}
	if a.MSPID != msp {
		return refuse(CodeForbidden, "cluster %q is admitted for MSP %q, not %q", clusterID, a.MSPID, msp)
	}
	return nil
}

// RemoveCluster ends a cluster's membership: its registration and admission are deleted,
// so it can no longer bid, be chosen or report, and its id may be admitted again. The
// admin MSP or the cluster's own MSP may remove it.
func RemoveCluster(st State, clusterID, reason string) (*Admission, error) {
	if err := validateID("cluster id", clusterID); err != nil {
		return nil, err
	}
	if err := validateText("removal reason", reason, MaxTextLength); err != nil {
		return nil, err
	}
	tx, err := begin(st)
	if err != nil {
		return nil, err
	}
	a, err := GetAdmission(st, clusterID)
	if err != nil {
		return nil, err
	}
	admin, err := isAdmin(st, tx)
	if err != nil {
		return nil, err
	}
	if !admin && a.MSPID != tx.msp {
		return nil, refuse(CodeForbidden, "MSP %q may not remove cluster %q, which is admitted for MSP %q", tx.msp, clusterID, a.MSPID)
	}
	for _, key := range []string{admissionPrefix + clusterID, clusterPrefix + clusterID} {
		if err := st.DelState(key); err != nil {
			return nil, fmt.Errorf("deleting %s: %w", key, err)
		}
	}
	a.Admitted, a.TxID, a.Time = false, tx.id, formatTime(tx.time)
	return a, emit(st, Event{Type: EventClusterRemoved, ClusterID: clusterID, MSPID: tx.msp, TxID: tx.id, Time: a.Time})
}

// Validate checks a ledger configuration.
func (c LedgerConfig) Validate() error {
	if c.DeadAfterSeconds < 0 || c.DeadAfterSeconds > MaxDeadAfterSeconds {
		return refuse(CodeInvalid, "dead-after %d s is outside [1, %d] (0 for the default, %s)", c.DeadAfterSeconds, MaxDeadAfterSeconds, DefaultDeadAfter)
	}
	return validateMSPID("admin MSP", c.AdminMSP)
}

// DeadAfterSeconds converts a dead-after window as flags give it to
// LedgerConfig.DeadAfterSeconds: 0 stays 0 (the default), anything else must be whole
// seconds from 1 s to MaxDeadAfterSeconds.
func DeadAfterSeconds(d time.Duration) (int64, error) {
	if d != 0 && (d%time.Second != 0 || d < time.Second || d > MaxDeadAfterSeconds*time.Second) {
		return 0, refuse(CodeInvalid, "dead-after %s must be whole seconds from 1s to %s (0 for the default, %s)", d, MaxDeadAfterSeconds*time.Second, DefaultDeadAfter)
	}
	return int64(d / time.Second), nil
}

// DeadAfter is the configured dead-after window, DefaultDeadAfter when unset.
func (c LedgerConfig) DeadAfter() time.Duration {
	if c.DeadAfterSeconds == 0 {
		return DefaultDeadAfter
	}
	return time.Duration(c.DeadAfterSeconds) * time.Second
}

// Validate checks an admission.
func (a AdmissionInput) Validate() error {
	if err := validateID("cluster id", a.ClusterID); err != nil {
		return err
	}
	return validateMSPID("MSP id", a.MSPID)
}

func validateMSPID(what, id string) error {
	if id == "" || len(id) > MaxIDLength*2 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return refuse(CodeInvalid, "%s %q must be 1 to %d printable ASCII characters", what, truncate(id), MaxIDLength*2)
	}
	return nil
}
