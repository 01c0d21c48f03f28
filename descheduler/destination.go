package descheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/policy"
)

// readyRequeue: the destination's copy is starting; pod events requeue sooner.
const readyRequeue = time.Second

func equalStatus(a, b v1alpha1.MigrationStatus) bool { return apiequality.Semantic.DeepEqual(a, b) }

// createDestinationMigration records that the ledger chose this cluster: a Migration named
// after the ledger id, in the namespace this cluster hosts the workload in, drives the
// destination's part.
func (c *Controller) createDestinationMigration(ctx context.Context, lm *chaincode.Migration) error {
	kind, srcNS, name, ok := splitWorkload(lm.Workload)
	if !ok {
		return c.reportFailed(ctx, lm.ID, fmt.Sprintf("workload %q is not Kind/namespace/name", lm.Workload))
	}
	ns, err := c.policy.HostNamespace(lm.Source, srcNS)
	if err != nil {
		return c.reportFailed(ctx, lm.ID, "this cluster's policy: "+err.Error())
	}
	if _, err := c.hostClient(ctx, lm.Source, ns); err != nil {
		return err
	}
	m := &v1alpha1.Migration{
		ObjectMeta: metav1.ObjectMeta{Name: lm.ID, Namespace: ns},
		Spec:       v1alpha1.MigrationSpec{Workload: v1alpha1.WorkloadReference{Kind: kind, Name: name}, Reason: v1alpha1.MigrationReason(lm.Reason), LedgerID: lm.ID},
	}
	if l := lm.ClientLocation; l != nil {
		m.Spec.ClientLocation = &v1alpha1.Location{Lat: l.Lat, Lon: l.Lon}
	}
	created, err := c.migs.EdgemigrateV1alpha1().Migrations(ns).Create(ctx, m, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating destination Migration %s/%s: %w", ns, lm.ID, err)
	}
	klog.FromContext(ctx).Info("Chosen as destination", "migration", klog.KObj(created), "ledgerID", lm.ID, "source", lm.Source, "workload", lm.Workload)
	// Seed the informer-less path: the Add event enqueues it as well.
	c.enqueueMigration(created)
	return nil
}

// bundleOf is migration lm's bundle as this destination fetched and checked it, with the
// objects' namespace set to ns. A refusal (errRefused) gives the migration back.
func (c *Controller) bundleOf(ctx context.Context, lm *chaincode.Migration, ns string) (*serviceBundle, error) {
	if b, ok := c.bundles.Load(lm.ID); ok {
		return b.(*serviceBundle), nil
	}
	b, err := c.fetchBundle(ctx, lm)
	if err != nil {
		return nil, err
	}
	b.Workload.meta().Namespace = ns
	for _, m := range b.objectMetas() {
		m.Namespace = ns
	}
	if err := c.policy.CheckBundle(ns, policy.Objects{Deployment: b.Workload.Deployment, Pod: b.Workload.Pod, Services: b.Services,
		ConfigMaps: b.ConfigMaps, PodDisruptionBudget: b.PodDisruptionBudget, HorizontalPodAutoscaler: b.HorizontalPodAutoscaler}); err != nil {
		return nil, errRefused{"this cluster's policy refuses the bundle: " + err.Error()}
	}
	c.bundles.Store(lm.ID, b)
	return b, nil
}

// syncDestination drives this cluster's part of a migration the ledger gave it: fetch the
// bundle, create it, report Ready, or give the migration back.
func (c *Controller) syncDestination(ctx context.Context, m *v1alpha1.Migration) (time.Duration, error) {
	id := m.Spec.LedgerID
	logger := klog.FromContext(ctx).WithValues("migration", klog.KObj(m), "ledgerID", id)
	start := c.clock.Now()
	lm, err := c.ledger.GetMigration(ctx, id)
	c.metrics.ledgerCall("GetMigration", start, err)
	if unreachable(err) && m.Status.Role != "" {
		// The copy stays, whatever its state: it may have been reported Ready.
		if werr := c.setLedgerReachable(ctx, m, err); werr != nil {
			return 0, werr
		}
		return 0, err
	}
	if err != nil {
		return 0, err
	}
	if m.Status.Role != "" {
		if err := c.setLedgerReachable(ctx, m, nil); err != nil {
			return 0, err
		}
	}
	// While the copy starts, the gateway sends the client to the source: know where it is.
	if err := c.learnEndpoint(ctx, lm.Source); err != nil {
		logger.Error(err, "The gateway cannot send the client back to the source until resync reads its endpoint")
	}
	if m.Status.Role == "" {
		now := metav1.NewTime(c.clock.Now())
		m.Status = v1alpha1.MigrationStatus{Role: v1alpha1.RoleDestination, Phase: v1alpha1.PhaseCreating, LedgerID: id,
			Source: lm.Source, Destination: c.cfg.ClusterID, StartTime: &now, Replicas: max(lm.Metadata.Replicas, 1)}
		return 0, c.writeStatus(ctx, m)
	}
	c.copyBids(m, lm)
	chosen := lm.Decision != nil && lm.Decision.Destination == c.cfg.ClusterID
	switch {
	case lm.State == chaincode.StateCompleted && chosen:
		now := metav1.NewTime(c.clock.Now())
		m.Status.CompletionTime = &now
		logger.Info("Completed: the service runs here", "source", lm.Source)
		c.recorder.Eventf(m, corev1.EventTypeNormal, "Completed", "%s removed its copy; the service runs here", lm.Source)
		return 0, c.setPhase(ctx, m, v1alpha1.PhaseCompleted, "Completed", "the service runs here")
	case lm.State == chaincode.StateAborted || lm.State == chaincode.StateRejected || !chosen:
		// The source gave up, or this cluster failed and another was chosen.
		if err := c.removeCopy(ctx, m, lm); err != nil {
			return 0, err
		}
		phase, reason := v1alpha1.PhaseAborted, "Aborted"
		if !chosen && lm.State != chaincode.StateAborted {
			phase, reason = v1alpha1.PhaseFailed, "Replaced"
		}
		logger.Info("Removed the copy of a migration this cluster no longer runs", "state", lm.State)
		return 0, c.finish(ctx, m, phase, reason, "ledger state "+lm.State+": "+lm.StateReason)
	case lm.State == chaincode.StateReady:
		return 0, c.setPhase(ctx, m, v1alpha1.PhaseReady, "Ready", "waiting for "+lm.Source+" to remove its copy")
	}
	// Decided for this cluster.
	if c.cfg.DryRun {
		return 0, c.giveUp(ctx, logger, m, lm, "dry run: not creating the workload")
	}
	timedOut := c.clock.Now().After(m.Status.StartTime.Add(c.cfg.DestinationReadyTimeout))
	b, err := c.bundleOf(ctx, lm, m.Namespace)
	if err != nil {
		if !isRetryable(err) || timedOut {
			return 0, c.giveUp(ctx, logger, m, lm, "the service's bundle: "+err.Error())
		}
		return 0, err
	}
	// The locator serves the client before the pods exist.
	if client := b.Workload.template().Annotations[api.AnnotationClientID]; m.Spec.ClientID == "" && client != "" {
		m.Spec.ClientID = client
		updated, err := c.migs.EdgemigrateV1alpha1().Migrations(m.Namespace).Update(ctx, m, metav1.UpdateOptions{})
		if err != nil {
			return 0, fmt.Errorf("recording client %s on Migration %s/%s: %w", client, m.Namespace, m.Name, err)
		}
		c.migrations.Mutation(updated)
		m.ResourceVersion = updated.ResourceVersion
	}
	kube, err := c.hostClient(ctx, lm.Source, m.Namespace)
	if err != nil {
		return 0, err
	}
	ready, err := c.ensureCreated(ctx, kube, b, m.Namespace, id, lm.Source)
	var refused errRefused
	if errors.As(err, &refused) {
		return 0, c.giveUp(ctx, logger, m, lm, refused.msg)
	}
	if err != nil {
		return 0, err
	}
	if !ready {
		// A copy that crashes will not get Ready: give the migration back now, so the source
		// keeps serving and the ledger tries the next bidder, not after the timeout.
		if why, crashed := c.crashedCopy(&b.Workload, m.Namespace); crashed {
			return 0, c.giveUp(ctx, logger, m, lm, "the copy crashed before it was Ready: "+why)
		}
		if timedOut {
			return 0, c.giveUp(ctx, logger, m, lm, fmt.Sprintf("not Ready within --destination-ready-timeout %s", c.cfg.DestinationReadyTimeout))
		}
		if err := c.setPhase(ctx, m, v1alpha1.PhaseCreating, "WaitingForReady", "waiting for the workload to be Ready"); err != nil {
			return 0, err
		}
		return readyRequeue, nil // pod events requeue sooner
	}
	start = c.clock.Now()
	_, err = c.ledger.ReportReady(ctx, id, c.cfg.ClusterID)
	c.metrics.ledgerCall("ReportReady", start, err)
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict {
		return 0, fmt.Errorf("reporting %s ready: %w", id, err)
	}
	now := metav1.NewTime(c.clock.Now())
	m.Status.ReadyTime = &now
	logger.Info("Workload ready; reported to the ledger", "workload", lm.Workload, "source", lm.Source)
	c.recorder.Eventf(m, corev1.EventTypeNormal, "Ready", "%s is Ready here", lm.Workload)
	return 0, c.setPhase(ctx, m, v1alpha1.PhaseReady, "Ready", "waiting for "+lm.Source+" to remove its copy")
}

// removeCopy deletes what this cluster created for the migration (removeCreated).
func (c *Controller) removeCopy(ctx context.Context, m *v1alpha1.Migration, lm *chaincode.Migration) error {
	kube, err := c.hostClient(ctx, lm.Source, m.Namespace)
	if err != nil {
		return err
	}
	if err := c.removeCreated(ctx, kube, m.Namespace, lm.ID, lm.Source, m.CreationTimestamp.Time); err != nil {
		return fmt.Errorf("removing the copy of migration %s: %w", lm.ID, err)
	}
	c.bundles.Delete(lm.ID)
	return nil
}

// giveUp deletes what this cluster created and reports the failure, so the ledger picks
// the next bidder.
func (c *Controller) giveUp(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration, lm *chaincode.Migration, reason string) error {
	// A copy that may have been reported Ready (a ReportReady whose answer was lost) is the
	// one the source now removes its own for: read the ledger again before deleting it.
	start := c.clock.Now()
	fresh, err := c.ledger.GetMigration(ctx, lm.ID)
	c.metrics.ledgerCall("GetMigration", start, err)
	if err != nil {
		return fmt.Errorf("reading migration %s before giving it back: %w", lm.ID, err)
	}
	if fresh.State != chaincode.StateDecided || fresh.Decision == nil || fresh.Decision.Destination != c.cfg.ClusterID {
		c.queue.Add(migrationKey(m)) // moved on meanwhile: the next sync follows it
		return nil
	}
	if err := c.removeCopy(ctx, m, lm); err != nil {
		return err
	}
	if err := c.reportFailed(ctx, lm.ID, reason); err != nil {
		return err
	}
	logger.Info("Gave the migration back to the ledger", "reason", reason)
	c.recorder.Event(m, corev1.EventTypeWarning, "DestinationFailed", reason)
	return c.finish(ctx, m, v1alpha1.PhaseFailed, "DestinationFailed", reason)
}

func (c *Controller) reportFailed(ctx context.Context, id, reason string) error {
	start := c.clock.Now()
	_, err := c.ledger.ReportFailed(ctx, id, c.cfg.ClusterID, chaincode.Truncate(reason, chaincode.MaxTextLength))
	c.metrics.ledgerCall("ReportFailed", start, err)
	if err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict && chaincode.CodeOf(err) != chaincode.CodeForbidden {
		return fmt.Errorf("reporting %s failed: %w", id, err)
	}
	return nil
}

// crashedCopy reports whether a pod of the migrated copy has a container that restarted,
// is in CrashLoopBackOff or ended with an error, and says which and why.
func (c *Controller) crashedCopy(w *workloadManifest, ns string) (string, bool) {
	for _, p := range c.podsOf(ns, v1alpha1.WorkloadReference{Kind: w.Kind, Name: w.meta().Name}) {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, st := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if why, ok := containerCrash(st); ok {
				return fmt.Sprintf("container %s of pod %s/%s %s", st.Name, p.Namespace, p.Name, why), true
			}
		}
	}
	return "", false
}

// containerCrash says how a container failed, if it did.
func containerCrash(st corev1.ContainerStatus) (string, bool) {
	term := func(t *corev1.ContainerStateTerminated) string {
		s := fmt.Sprintf("exit code %d", t.ExitCode)
		if t.Reason != "" {
			s += " (" + t.Reason + ")"
		}
		if t.Message != "" {
			s += ": " + chaincode.Truncate(t.Message, 200)
		}
		return s
	}
	switch {
	case st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff":
		why := "is in CrashLoopBackOff"
		if t := st.LastTerminationState.Terminated; t != nil {
			why += ", last " + term(t)
		} else if st.State.Waiting.Message != "" {
			why += ": " + st.State.Waiting.Message
		}
		return why, true
	case st.State.Terminated != nil && st.State.Terminated.ExitCode != 0:
		return "terminated with " + term(st.State.Terminated), true
	case st.RestartCount > 0:
		why := fmt.Sprintf("restarted %d times", st.RestartCount)
		if t := st.LastTerminationState.Terminated; t != nil {
			why += ", last " + term(t)
		}
		return why, true
	}
	return "", false
}
