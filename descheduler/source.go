package descheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

// Reasons of the SourceRemoved condition while the copy goes.
const (
	// reasonEvictionBlocked: a PodDisruptionBudget keeps the source's pod.
	reasonEvictionBlocked = "EvictionBlocked"
	// reasonDraining: requests through the gateway still run on the copy.
	reasonDraining = "Draining"
	// reasonRemoving: drained (or --drain-timeout passed); the copy is being removed.
	reasonRemoving = "Removing"
)

// Requeue delays of the source's steps; events usually come sooner.
const (
	// bidsRequeue: a bid event requeues sooner.
	bidsRequeue = 250 * time.Millisecond
	// queuedRequeue: a Migration waiting for a free --max-concurrent-migrations slot.
	queuedRequeue = time.Second
	// removalRequeue: the local copy is going; pod events requeue sooner.
	removalRequeue = 500 * time.Millisecond
	// evictionBlockedRequeue: a PodDisruptionBudget refused the eviction.
	evictionBlockedRequeue = 5 * time.Second
	// drainRequeue: requests in flight are short; no event says when they end.
	drainRequeue = 100 * time.Millisecond
)

// syncSource drives a Migration of a workload of this cluster: propose, decide, and once the
// destination is Ready remove the local copy and complete. The ledger is the truth; the
// status follows it, so every step may run again after a crash.
func (c *Controller) syncSource(ctx context.Context, m *v1alpha1.Migration) (time.Duration, error) {
	logger := klog.FromContext(ctx).WithValues("migration", klog.KObj(m))
	if m.Status.Role == "" {
		now := metav1.NewTime(c.clock.Now())
		m.Status = v1alpha1.MigrationStatus{Role: v1alpha1.RoleSource, Phase: v1alpha1.PhasePending,
			LedgerID: c.sourceLedgerID(m), Source: c.cfg.ClusterID, StartTime: &now}
		return 0, c.writeStatus(ctx, m)
	}
	id := m.Status.LedgerID
	logger = logger.WithValues("ledgerID", id)
	start := c.clock.Now()
	lm, err := c.ledger.GetMigration(ctx, id)
	c.metrics.ledgerCall("GetMigration", start, err)
	if chaincode.CodeOf(err) == chaincode.CodeNotFound {
		return c.propose(ctx, logger, m)
	}
	if unreachable(err) {
		if werr := c.setLedgerReachable(ctx, m, err); werr != nil {
			return 0, werr
		}
		if m.Status.Phase == v1alpha1.PhaseReady {
			// The ledger said Ready, and only this source moves a migration on from there:
			// verify, remove the copy, and complete on the ledger once it answers.
			return c.finishReady(ctx, logger, m, id)
		}
		return 0, err // the copy stays; the key waits for the ledger with backoff
	}
	if err != nil {
		return 0, err
	}
	if err := c.setLedgerReachable(ctx, m, nil); err != nil {
		return 0, err
	}
	c.copyBids(m, lm)
	switch lm.State {
	case chaincode.StateProposed:
		if c.expired(m) {
			return 0, c.abort(ctx, m, "no decision before --migration-timeout")
		}
		start := c.clock.Now()
		lm, err = c.ledger.Decide(ctx, id)
		c.metrics.ledgerCall("Decide", start, err)
		if chaincode.CodeOf(err) == chaincode.CodeNotYet {
			// A bid event requeues sooner.
			return bidsRequeue, c.setPhase(ctx, m, v1alpha1.PhaseProposed, "WaitingForBids", "waiting for bids")
		}
		if chaincode.CodeOf(err) == chaincode.CodeConflict {
			return 0, nil // decided meanwhile: its event requeues
		}
		if err != nil {
			return 0, err
		}
		c.copyBids(m, lm)
		return 0, c.followLedger(ctx, logger, m, lm)
	default:
		return c.afterDecision(ctx, logger, m, lm)
	}
}

// propose puts a Pending Migration on the ledger.
func (c *Controller) propose(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration) (time.Duration, error) {
	if c.expired(m) {
		return 0, c.finish(ctx, m, v1alpha1.PhaseAborted, "Timeout", "not proposed before --migration-timeout")
	}
	if refused, err := c.refuseSecond(ctx, m); refused || err != nil {
		return 0, err
	}
	if c.cfg.DryRun {
		return 0, c.setPhase(ctx, m, v1alpha1.PhasePending, "DryRun", "dry run: would propose this migration to the ledger")
	}
	if n, ok := c.admit(m); !ok {
		return queuedRequeue, c.setPhase(ctx, m, v1alpha1.PhasePending, "Queued",
			fmt.Sprintf("%d migrations in flight, the most --max-concurrent-migrations allows", n))
	}
	p, replicas, err := c.proposal(ctx, m, m.Status.LedgerID)
	if apierrors.IsNotFound(err) {
		return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, "WorkloadNotFound", fmt.Sprintf("%s %s not found", m.Spec.Workload.Kind, m.Spec.Workload.Name))
	}
	var notMigratable errNotMigratable
	if errors.As(err, &notMigratable) {
		return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, api.ReasonNotMigratable, notMigratable.msg)
	}
	if err != nil {
		return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, "InvalidWorkload", err.Error())
	}
	start := c.clock.Now()
	_, err = c.ledger.ProposeMigration(ctx, p)
	c.metrics.ledgerCall("ProposeMigration", start, err)
	if chaincode.CodeOf(err) == chaincode.CodeConflict {
		// Proposed already (a retry after a lost answer), or refused: the ledger homes
		// this service elsewhere, so this copy is superseded and must not move on.
		if _, gerr := c.ledger.GetMigration(ctx, p.ID); chaincode.CodeOf(gerr) == chaincode.CodeNotFound {
			return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, api.ReasonMigratedAway, "the ledger refused the proposal: "+err.Error())
		} else if gerr != nil {
			return 0, fmt.Errorf("reading %s after a conflicting proposal: %w", p.ID, gerr)
		}
	}
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		if chaincode.CodeOf(err) == chaincode.CodeInvalid || chaincode.CodeOf(err) == chaincode.CodeForbidden {
			return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, "Refused", "the ledger refused the proposal: "+err.Error())
		}
		return 0, fmt.Errorf("proposing %s: %w", m.Status.LedgerID, err)
	}
	now := metav1.NewTime(c.clock.Now())
	m.Status.ProposedTime, m.Status.Replicas = &now, replicas
	c.metrics.phase(m, "proposed")
	logger.Info("Proposed", "workload", p.Workload, "reason", p.Reason, "replicas", replicas, "bidTimeout", c.cfg.BidTimeout)
	c.recorder.Eventf(m, corev1.EventTypeNormal, "Proposed", "Proposed %s on the ledger as %s; bids close %s after it (ledger time)", p.Workload, p.ID, c.cfg.BidTimeout)
	return c.cfg.BidTimeout, c.setPhase(ctx, m, v1alpha1.PhaseProposed, "WaitingForBids", "waiting for bids")
}

// In-flight source migrations are counted in c.admitted, not from the informer: the
// workers' own writes reach the informer late, and a burst of triggers would all see room.
// A Migration holds its place from admission (before it is proposed) until it is final.

// admit reserves a place in flight for m, unless --max-concurrent-migrations are taken;
// it returns how many are.
func (c *Controller) admit(m *v1alpha1.Migration) (int, bool) {
	key := cache.MetaObjectToName(m).String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.admitted[key]; ok {
		return len(c.admitted), true
	}
	if len(c.admitted) >= c.cfg.MaxConcurrentMigrations {
		return len(c.admitted), false
	}
	c.admitted[key] = struct{}{}
	return len(c.admitted), true
}

// release frees m's place in flight.
func (c *Controller) release(m *v1alpha1.Migration) {
	c.mu.Lock()
	delete(c.admitted, cache.MetaObjectToName(m).String())
	c.mu.Unlock()
}

// seedAdmitted counts what is in flight at start: the source Migrations past Pending and
// not final, from the synced informer (a restart forgets no place).
func (c *Controller) seedAdmitted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, obj := range c.migIndexer.List() {
		m := obj.(*v1alpha1.Migration)
		if m.Status.Role == v1alpha1.RoleSource && !m.Final() && m.Status.Phase != v1alpha1.PhasePending && m.Status.Phase != "" {
			c.admitted[cache.MetaObjectToName(m).String()] = struct{}{}
		}
	}
}

func (c *Controller) expired(m *v1alpha1.Migration) bool {
	return m.Status.StartTime != nil && c.clock.Now().After(m.Status.StartTime.Add(c.cfg.MigrationTimeout))
}

func (c *Controller) copyBids(m *v1alpha1.Migration, lm *chaincode.Migration) {
	m.Status.Bids = m.Status.Bids[:0]
	for _, b := range lm.Bids {
		m.Status.Bids = append(m.Status.Bids, v1alpha1.Bid{Cluster: b.ClusterID, CanHost: b.CanHost, CoversClient: b.CoversClient,
			Score: strconv.FormatFloat(b.Score, 'f', -1, 64), Reason: b.Reason})
	}
	m.Status.Excluded = append(m.Status.Excluded[:0], lm.Excluded...)
}

// afterDecision handles a decided migration.
func (c *Controller) afterDecision(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration, lm *chaincode.Migration) (time.Duration, error) {
	switch lm.State {
	case chaincode.StateDecided:
		if c.expired(m) {
			return 0, c.abort(ctx, m, "the destination was not Ready before --migration-timeout")
		}
		return 0, c.followLedger(ctx, logger, m, lm)
	case chaincode.StateReady:
		if m.Status.Phase != v1alpha1.PhaseReady {
			if err := c.followLedger(ctx, logger, m, lm); err != nil {
				return 0, err
			}
		}
		return c.finishReady(ctx, logger, m, lm.ID)
	case chaincode.StateCompleted:
		return 0, c.complete(ctx, logger, m)
	case chaincode.StateRejected:
		c.recordOnWorkload(m, corev1.EventTypeWarning, "MigrationFailed", "No cluster can take %s %s; it stays here: %s",
			m.Spec.Workload.Kind, m.Spec.Workload.Name, lm.StateReason)
		return 0, c.finish(ctx, m, v1alpha1.PhaseFailed, "NoDestination", lm.StateReason)
	case chaincode.StateAborted:
		return 0, c.finish(ctx, m, v1alpha1.PhaseAborted, "Aborted", lm.StateReason)
	}
	return 0, nil
}

// finishReady ends a migration the ledger reported Ready: once the destination serves
// (verified through its gateway), remove the local copy and complete on the ledger. It
// needs the ledger only for the last step, so it goes on during an outage; the status then
// says the copy is gone and the completion waits.
func (c *Controller) finishReady(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration, id string) (time.Duration, error) {
	// The locator already sends the client to the destination; once it serves there,
	// remove the local copy.
	if ok, wait, err := c.verifyDestination(ctx, logger, m); !ok || err != nil {
		return wait, err
	}
	gone, wait, err := c.removeSource(ctx, logger, m)
	if err != nil || !gone {
		return wait, err
	}
	start := c.clock.Now()
	_, err = c.ledger.Complete(ctx, id)
	c.metrics.ledgerCall("Complete", start, err)
	if unreachable(err) {
		meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSourceRemoved, Status: metav1.ConditionTrue,
			Reason: "Removed", Message: "the local copy is gone; completing on the ledger when it answers", LastTransitionTime: metav1.NewTime(c.clock.Now())})
		if werr := c.setLedgerReachable(ctx, m, err); werr != nil {
			return 0, werr
		}
		return 0, err
	}
	if chaincode.CodeOf(err) == chaincode.CodeConflict {
		// Completed already (a retry after a lost answer), or refused: while this cluster
		// was cut off the service was taken back by another than the destination. The
		// destination's copy must go too, and only this source can end the migration.
		lm, gerr := c.ledger.GetMigration(ctx, id)
		if gerr != nil {
			return 0, fmt.Errorf("reading %s after a refused completion: %w", id, gerr)
		}
		if lm.State == chaincode.StateReady {
			return 0, c.abortSuperseded(ctx, logger, m, err)
		}
	}
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		return 0, fmt.Errorf("completing %s: %w", id, err)
	}
	return 0, c.complete(ctx, logger, m)
}

// abortSuperseded ends a Ready migration whose completion the ledger refused because the
// service is homed elsewhere: the destination removes its copy on the Aborted event.
func (c *Controller) abortSuperseded(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration, refused error) error {
	reason := chaincode.Truncate("superseded: "+refused.Error(), chaincode.MaxTextLength)
	start := c.clock.Now()
	_, err := c.ledger.Abort(ctx, m.Status.LedgerID, reason)
	c.metrics.ledgerCall("Abort", start, err)
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		return fmt.Errorf("aborting %s: %w", m.Status.LedgerID, err)
	}
	logger.Info("Aborted a migration the ledger would not complete: the service is homed elsewhere", "refusal", refused.Error())
	c.recorder.Event(m, corev1.EventTypeWarning, api.EventSuperseded, "The ledger homes this service elsewhere (it was taken back while this cluster was cut off); the migration is aborted and its destination removes its copy: "+refused.Error())
	return c.finish(ctx, m, v1alpha1.PhaseAborted, api.ReasonMigratedAway, reason)
}

// setLedgerReachable records on the Migration whether the ledger answered (err nil) or
// not: LedgerReachable False with a Warning Event when an outage starts for it, True when
// it ends. Nothing is written while the condition is absent and the ledger answers.
func (c *Controller) setLedgerReachable(ctx context.Context, m *v1alpha1.Migration, err error) error {
	cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionLedgerReachable)
	now := metav1.NewTime(c.clock.Now())
	if err == nil {
		if cond == nil || cond.Status == metav1.ConditionTrue {
			return nil
		}
		meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionLedgerReachable, Status: metav1.ConditionTrue,
			Reason: "Reachable", Message: "the ledger answers again", LastTransitionTime: now})
		c.recorder.Event(m, corev1.EventTypeNormal, "LedgerReachable", "The ledger answers again; the migration goes on")
		return c.writeStatus(ctx, m)
	}
	msg := "waiting for the ledger"
	if m.Status.Role == v1alpha1.RoleSource && m.Status.Phase != v1alpha1.PhaseReady {
		msg += "; the service stays here meanwhile"
	}
	msg += ": " + chaincode.Truncate(err.Error(), 512)
	if cond == nil || cond.Status != metav1.ConditionFalse {
		c.recorder.Event(m, corev1.EventTypeWarning, "LedgerUnreachable", msg)
	} else {
		msg = cond.Message // one write per outage, not one per retry
	}
	meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionLedgerReachable, Status: metav1.ConditionFalse,
		Reason: "Unreachable", Message: msg, LastTransitionTime: now})
	return c.writeStatus(ctx, m)
}

// followLedger copies a decision into the status.
func (c *Controller) followLedger(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration, lm *chaincode.Migration) error {
	switch lm.State {
	case chaincode.StateDecided, chaincode.StateReady:
		dest := lm.Decision.Destination
		if m.Status.Destination != dest {
			m.Status.Destination = dest
			cl, err := c.ledger.GetCluster(ctx, dest)
			if err != nil {
				return fmt.Errorf("reading destination cluster %s: %w", dest, err)
			}
			m.Status.DestinationEndpoint = cl.Endpoint
			now := metav1.NewTime(c.clock.Now())
			m.Status.DecidedTime = &now
			c.metrics.phase(m, "decided")
			logger.Info("Decided", "destination", dest, "score", lm.Decision.Score, "bids", len(lm.Bids), "excluded", lm.Excluded)
			c.recorder.Eventf(m, corev1.EventTypeNormal, "Decided", "The ledger chose %s (score %v) among %d bids", dest, lm.Decision.Score, len(lm.Bids))
		}
		if lm.State == chaincode.StateReady {
			now := metav1.NewTime(c.clock.Now())
			m.Status.ReadyTime = &now
			c.metrics.phase(m, "ready")
			logger.Info("Destination ready; sending the client there and removing the local copy", "destination", dest)
			c.recorder.Eventf(m, corev1.EventTypeNormal, "DestinationReady", "%s runs the service; clients go there now", dest)
			return c.setPhase(ctx, m, v1alpha1.PhaseReady, "DestinationReady", "removing the local copy")
		}
		return c.setPhase(ctx, m, v1alpha1.PhaseDecided, "WaitingForDestination", "waiting for "+dest+" to run the service")
	case chaincode.StateProposed:
		return c.setPhase(ctx, m, v1alpha1.PhaseProposed, "WaitingForBids", "waiting for bids")
	}
	_, err := c.afterDecision(ctx, logger, m, lm)
	return err
}

// removeSource removes this cluster's copy: a Deployment is scaled to zero and annotated
// with where it went (so the service can come back), a bare Pod is evicted, respecting
// PodDisruptionBudgets. It reports whether the copy is gone, else when to look again.
func (c *Controller) removeSource(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration) (bool, time.Duration, error) {
	if wait, err := c.drain(ctx, logger, m); wait > 0 || err != nil {
		return false, wait, err
	}
	ns, name := m.Namespace, m.Spec.Workload.Name
	switch m.Spec.Workload.Kind {
	case v1alpha1.KindDeployment:
		d, err := c.deployments.Deployments(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return true, 0, nil
		}
		if err != nil {
			return false, 0, err
		}
		if ptr.Deref(d.Spec.Replicas, 1) != 0 || d.Annotations[api.AnnotationMigratedTo] != m.Status.Destination {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:%q,%q:%q}},"spec":{"replicas":0}}`,
				api.AnnotationMigratedTo, m.Status.Destination, api.AnnotationMigrationID, m.Status.LedgerID, api.AnnotationOrigin, originOf(c.cfg.ClusterID, &d.ObjectMeta))
			if _, err := c.kube.AppsV1().Deployments(ns).Patch(ctx, name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
				return false, 0, fmt.Errorf("scaling Deployment %s/%s to zero: %w", ns, name, err)
			}
			logger.Info("Scaled the local Deployment to zero", "deployment", klog.KRef(ns, name), "migratedTo", m.Status.Destination)
		}
		pods, err := c.pods.Pods(ns).List(selectorOf(d))
		if err != nil {
			return false, 0, err
		}
		if len(pods) > 0 {
			return false, removalRequeue, nil // the pod informer requeues sooner
		}
	case v1alpha1.KindPod:
		p, err := c.pods.Pods(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return true, 0, nil
		}
		if err != nil {
			return false, 0, err
		}
		if p.DeletionTimestamp == nil {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}}}
			err := c.kube.CoreV1().Pods(ns).EvictV1(ctx, ev)
			switch {
			case apierrors.IsTooManyRequests(err):
				msg := "a PodDisruptionBudget blocks the eviction; retrying: " + err.Error()
				if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionSourceRemoved); cond == nil || cond.Reason != reasonEvictionBlocked {
					c.recorder.Event(m, corev1.EventTypeWarning, reasonEvictionBlocked, msg)
					c.recorder.Event(p, corev1.EventTypeWarning, reasonEvictionBlocked, "Migration "+m.Name+": "+msg)
				}
				meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSourceRemoved, Status: metav1.ConditionFalse,
					Reason: reasonEvictionBlocked, Message: msg, LastTransitionTime: metav1.NewTime(c.clock.Now())})
				return false, evictionBlockedRequeue, c.writeStatus(ctx, m)
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			case err != nil:
				return false, 0, fmt.Errorf("evicting pod %s/%s: %w", ns, name, err)
			default:
				logger.Info("Evicted the local pod", "pod", klog.KObj(p))
			}
		}
		return false, removalRequeue, nil
	}
	return true, 0, nil
}

// drain holds the removal of the source's copy while the gateway still proxies requests of
// its clients to it, at most --drain-timeout. New requests already go to the destination:
// the Migration is Ready, so the gateway's route says so; those counted now were routed
// here before. It returns how soon to look again, 0 once the copy may go.
func (c *Controller) drain(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration) (time.Duration, error) {
	if c.gatewayInFlight == nil {
		return 0, nil
	}
	cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionSourceRemoved)
	if cond != nil && cond.Reason != reasonDraining {
		return 0, nil // drained already: removing
	}
	n := 0
	for _, id := range c.clientsOf(m) {
		n += c.gatewayInFlight.InFlight(id)
	}
	now := c.clock.Now()
	set := func(reason, msg string) {
		meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSourceRemoved, Status: metav1.ConditionFalse,
			Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)})
	}
	switch {
	case n == 0:
		if cond != nil {
			logger.V(2).Info("Drained the gateway's requests to the local copy", "waited", now.Sub(cond.LastTransitionTime.Time))
		}
	case cond != nil && now.Sub(cond.LastTransitionTime.Time) >= c.cfg.DrainTimeout:
		msg := fmt.Sprintf("%d requests through the gateway still in flight after --drain-timeout %s; removing the local copy anyway", n, c.cfg.DrainTimeout)
		logger.Info("Drain timed out", "inFlight", n, "drainTimeout", c.cfg.DrainTimeout)
		c.recorder.Event(m, corev1.EventTypeWarning, "DrainTimeout", msg)
	default:
		msg := fmt.Sprintf("waiting for %d requests through the gateway to finish (at most --drain-timeout %s)", n, c.cfg.DrainTimeout)
		if cond == nil {
			logger.V(2).Info("Draining the gateway's requests to the local copy", "inFlight", n)
			c.recorder.Event(m, corev1.EventTypeNormal, reasonDraining, "Waiting for "+strconv.Itoa(n)+" requests through the gateway to finish before removing the local copy")
		}
		set(reasonDraining, msg)
		return drainRequeue, c.writeStatus(ctx, m)
	}
	// Recorded even when nothing was in flight: once removal starts, the brief count of a
	// request being redirected must not hold it again.
	set(reasonRemoving, "removing the local copy")
	return 0, c.writeStatus(ctx, m)
}

// clientsOf are the clients whose requests the source's copy serves: the Migration's and
// its pods'.
func (c *Controller) clientsOf(m *v1alpha1.Migration) []string {
	var ids []string
	if m.Spec.ClientID != "" {
		ids = append(ids, m.Spec.ClientID)
	}
	for _, p := range c.podsOf(m.Namespace, m.Spec.Workload) {
		if id := p.Annotations[api.AnnotationClientID]; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (c *Controller) complete(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration) error {
	meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionSourceRemoved, Status: metav1.ConditionTrue,
		Reason: "Removed", Message: "the local copy is gone", LastTransitionTime: metav1.NewTime(c.clock.Now())})
	c.metrics.phase(m, "completed")
	logger.Info("Completed", "destination", m.Status.Destination, "duration", c.clock.Since(m.Status.StartTime.Time))
	c.recorder.Eventf(m, corev1.EventTypeNormal, "Completed", "%s %s now runs in %s", m.Spec.Workload.Kind, m.Spec.Workload.Name, m.Status.Destination)
	return c.finish(ctx, m, v1alpha1.PhaseCompleted, "Completed", "the service runs in "+m.Status.Destination)
}

// abort gives up on the ledger after a timeout; the destination cleans up on the Aborted event.
func (c *Controller) abort(ctx context.Context, m *v1alpha1.Migration, reason string) error {
	return c.abortWith(ctx, m, "Timeout", reason)
}

// abortWith gives up on the ledger, with the status reason given.
func (c *Controller) abortWith(ctx context.Context, m *v1alpha1.Migration, statusReason, reason string) error {
	start := c.clock.Now()
	_, err := c.ledger.Abort(ctx, m.Status.LedgerID, reason)
	c.metrics.ledgerCall("Abort", start, err)
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		return fmt.Errorf("aborting %s: %w", m.Status.LedgerID, err)
	}
	c.recordOnWorkload(m, corev1.EventTypeWarning, "MigrationAborted", "Migration %s aborted, the service stays here: %s", m.Name, reason)
	return c.finish(ctx, m, v1alpha1.PhaseAborted, statusReason, reason)
}

// finish sets a final phase.
func (c *Controller) finish(ctx context.Context, m *v1alpha1.Migration, phase v1alpha1.MigrationPhase, reason, msg string) error {
	if m.Status.CompletionTime == nil {
		now := metav1.NewTime(c.clock.Now())
		m.Status.CompletionTime = &now
	}
	if m.Status.Role == v1alpha1.RoleSource && m.Status.Phase != phase {
		c.metrics.finished(m, phase)
	}
	if m.Status.Role == v1alpha1.RoleSource {
		defer c.release(m)
	}
	return c.setPhase(ctx, m, phase, reason, msg)
}

func (c *Controller) setPhase(ctx context.Context, m *v1alpha1.Migration, phase v1alpha1.MigrationPhase, reason, msg string) error {
	if m.Status.Phase != phase {
		klog.FromContext(ctx).Info("Migration phase", "migration", klog.KObj(m), "ledgerID", ledgerIDOf(m), "role", m.Status.Role,
			"from", m.Status.Phase, "to", phase, "reason", reason, "message", msg)
	}
	m.Status.Phase, m.Status.Reason, m.Status.Message = phase, reason, msg
	return c.writeStatus(ctx, m)
}

// writeStatus writes the status, with its observed generation and Ready condition, unless
// the latest copy this process knows already says the same.
func (c *Controller) writeStatus(ctx context.Context, m *v1alpha1.Migration) error {
	m.Status.ObservedGeneration = m.Generation
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: m.Status.Reason, Message: m.Status.Message,
		ObservedGeneration: m.Generation, LastTransitionTime: metav1.NewTime(c.clock.Now())}
	if ready.Reason == "" {
		ready.Reason = string(m.Status.Phase)
	}
	if m.Status.Phase == v1alpha1.PhaseReady || m.Status.Phase == v1alpha1.PhaseCompleted {
		ready.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&m.Status.Conditions, ready)
	if obj, ok, _ := c.migrations.GetByKey(cache.MetaObjectToName(m).String()); ok && equalStatus(obj.(*v1alpha1.Migration).Status, m.Status) {
		return nil
	}
	out, err := c.migs.EdgemigrateV1alpha1().Migrations(m.Namespace).UpdateStatus(ctx, m, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("writing the status of Migration %s/%s: %w", m.Namespace, m.Name, err)
	}
	c.migrations.Mutation(out)
	// A sync may write again (Ready, then Draining, then Completed): from this version, or
	// the API server refuses it as a conflict and the whole step is retried.
	m.ResourceVersion = out.ResourceVersion
	return nil
}

// recordOnWorkload records an Event on the Migration and on the workload's pods, where
// the people who own the service look.
func (c *Controller) recordOnWorkload(m *v1alpha1.Migration, eventType, reason, format string, args ...any) {
	c.recorder.Eventf(m, eventType, reason, format, args...)
	for _, p := range c.podsOf(m.Namespace, m.Spec.Workload) {
		c.recorder.Eventf(p, eventType, reason, format, args...)
	}
}

func (c *Controller) podsOf(ns string, ref v1alpha1.WorkloadReference) []*corev1.Pod {
	switch ref.Kind {
	case v1alpha1.KindDeployment:
		d, err := c.deployments.Deployments(ns).Get(ref.Name)
		if err != nil {
			return nil
		}
		pods, _ := c.pods.Pods(ns).List(selectorOf(d))
		return pods
	case v1alpha1.KindPod:
		if p, err := c.pods.Pods(ns).Get(ref.Name); err == nil {
			return []*corev1.Pod{p}
		}
	}
	return nil
}
