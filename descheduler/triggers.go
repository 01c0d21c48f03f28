package descheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/geo"
)

const (
	// retryAfterFailure keeps a trigger from starting the same doomed migration again and
	// again when no cluster can take the workload; the failed Migration and its Event say why.
	retryAfterFailure = 30 * time.Second
	// creatingGuard is how long a created Migration may take to show in the informer before
	// a trigger may create another for the same workload.
	creatingGuard = 30 * time.Second
	// offloadRecheck is how often a pod that stays unschedulable is looked at again while its
	// workload moves, so that it is offloaded again if that migration fails.
	offloadRecheck = time.Second
)

// enqueueOffload schedules an opted-in pod that the Jetson fit left unschedulable for its
// --offload-after: pod events drive the offload trigger, nothing lists every pod.
func (c *Controller) enqueueOffload(p *corev1.Pod) {
	if since, _, ok := c.offloadCandidate(p); ok {
		c.queue.AddAfter(queueKey{Kind: keyPendingPod, Namespace: p.Namespace, Name: p.Name}, c.cfg.OffloadAfter-c.clock.Since(since))
	}
}

// offloadCandidate reports whether p is an opted-in, migratable pod of this cluster's
// scheduler that cannot be scheduled, since when, and its workload.
func (c *Controller) offloadCandidate(p *corev1.Pod) (time.Time, v1alpha1.WorkloadReference, bool) {
	if p.Spec.SchedulerName != c.cfg.SchedulerName || p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending ||
		p.DeletionTimestamp != nil || p.Annotations[api.AnnotationNotMigratable] != "" {
		return time.Time{}, v1alpha1.WorkloadReference{}, false
	}
	since, ok := unschedulableSince(p)
	if !ok {
		return time.Time{}, v1alpha1.WorkloadReference{}, false
	}
	ref, ok := workloadOf(p)
	return since, ref, ok
}

// syncPendingPod starts an InsufficientResources migration for the workload of a pod
// unschedulable for longer than --offload-after.
func (c *Controller) syncPendingPod(ctx context.Context, namespace, name string) (time.Duration, error) {
	p, err := c.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	since, ref, ok := c.offloadCandidate(p)
	if !ok {
		return 0, nil
	}
	if wait := c.cfg.OffloadAfter - c.clock.Since(since); wait > 0 {
		return wait, nil
	}
	// The client, if the service has one, so that this cluster's gateway sends it on to
	// wherever the service is offloaded to.
	return c.startMigration(ctx, p, ref, v1alpha1.ReasonInsufficientResources, p.Annotations[api.AnnotationClientID], nil,
		fmt.Sprintf("pod %s unschedulable since %s", p.Name, since.Format(time.RFC3339)))
}

func unschedulableSince(p *corev1.Pod) (time.Time, bool) {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
			return cond.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func workloadOf(p *corev1.Pod) (v1alpha1.WorkloadReference, bool) {
	kind, ns, name, ok := splitWorkload(p.Annotations[api.AnnotationWorkload])
	if !ok || ns != p.Namespace {
		return v1alpha1.WorkloadReference{}, false
	}
	return v1alpha1.WorkloadReference{Kind: kind, Name: name}, true
}

// OnLocation is the locator's callback for an accepted location update.
func (c *Controller) OnLocation(ctx context.Context, clientID string, _ geo.Point) {
	c.checkClient(ctx, clientID)
}

// checkClients checks every client served here against the coverage.
func (c *Controller) checkClients(ctx context.Context) {
	for _, client := range c.podIndex.ListIndexFuncValues(indexPodClient) {
		c.checkClient(ctx, client)
	}
}

// checkClient starts a ClientMobility migration for each workload serving the client here,
// once the client is beyond the coverage radius plus the hysteresis.
func (c *Controller) checkClient(ctx context.Context, clientID string) {
	loc, ok := c.locations.Location(clientID)
	if !ok || !c.cfg.Coverage.Left(loc) {
		return
	}
	objs, _ := c.podIndex.ByIndex(indexPodClient, clientID)
	for _, obj := range objs {
		p := obj.(*corev1.Pod)
		if p.DeletionTimestamp != nil || p.Annotations[api.AnnotationNotMigratable] != "" || p.Spec.NodeName == "" {
			continue
		}
		ref, ok := workloadOf(p)
		if !ok {
			continue
		}
		_, err := c.startMigration(ctx, p, ref, v1alpha1.ReasonClientMobility, clientID, &loc,
			fmt.Sprintf("client %s is %.0f m away, beyond the %.0f m coverage", clientID, c.cfg.Coverage.Distance(loc), c.cfg.Coverage.RadiusM))
		if err != nil {
			klog.FromContext(ctx).Error(err, "Starting a migration", "client", clientID)
		}
	}
}

// startMigration creates a source Migration for a workload unless one is open, one failed
// recently, or the workload has already left. It says when the trigger should look again.
func (c *Controller) startMigration(ctx context.Context, p *corev1.Pod, ref v1alpha1.WorkloadReference, reason v1alpha1.MigrationReason,
	clientID string, loc *geo.Point, why string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	key := workloadKey(p.Namespace, ref.Kind, ref.Name)
	for _, m := range c.migrationsByIndex(indexWorkload, key) {
		if !m.Final() {
			return offloadRecheck, nil // moving already, or arriving here
		}
		if m.Status.Phase != v1alpha1.PhaseCompleted && m.Status.CompletionTime != nil {
			if wait := retryAfterFailure - c.clock.Since(m.Status.CompletionTime.Time); wait > 0 {
				return wait, nil
			}
		}
	}
	if ref.Kind == v1alpha1.KindDeployment {
		if d, err := c.deployments.Deployments(p.Namespace).Get(ref.Name); err != nil || ptr.Deref(d.Spec.Replicas, 1) == 0 {
			return offloadRecheck, nil // not in the informer yet, or moved away already
		}
	}
	c.mu.Lock()
	if t, ok := c.creating[key]; ok && c.clock.Since(t) < creatingGuard {
		c.mu.Unlock()
		return offloadRecheck, nil
	}
	c.creating[key] = c.clock.Now()
	c.mu.Unlock()

	m := &v1alpha1.Migration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: migrationName(ref.Name), Namespace: p.Namespace},
		Spec:       v1alpha1.MigrationSpec{Workload: ref, Reason: reason, ClientID: clientID},
	}
	if loc != nil {
		m.Spec.ClientLocation = &v1alpha1.Location{Lat: loc.Lat, Lon: loc.Lon}
	}
	created, err := c.migs.EdgemigrateV1alpha1().Migrations(p.Namespace).Create(ctx, m, metav1.CreateOptions{})
	if err != nil {
		c.mu.Lock()
		delete(c.creating, key)
		c.mu.Unlock()
		return 0, fmt.Errorf("creating a %s Migration of %s: %w", reason, key, err)
	}
	// The guard of the next trigger and of refuseSecond reads it before the informer shows it.
	c.migrations.Mutation(created)
	c.pruneHistory(ctx, key)
	c.metrics.triggers.WithLabelValues(string(reason)).Inc()
	logger.Info("Migration triggered", "migration", klog.KObj(created), "workload", key, "reason", reason, "why", why)
	c.recorder.Eventf(p, corev1.EventTypeNormal, "MigrationTriggered", "Migration %s (%s): %s", created.Name, reason, why)
	return offloadRecheck, nil
}

// keepFinished is how many finished Migrations of a workload stay for people to read: a
// car out of every cluster's coverage would otherwise leave one Failed Migration per retry.
const keepFinished = 5

// pruneHistory deletes a workload's finished Migrations beyond the newest keepFinished.
func (c *Controller) pruneHistory(ctx context.Context, key string) {
	var finished []*v1alpha1.Migration
	for _, m := range c.migrationsByIndex(indexWorkload, key) {
		if m.Final() {
			finished = append(finished, m)
		}
	}
	for _, m := range finished[:max(0, len(finished)-keepFinished)] {
		if err := c.migs.EdgemigrateV1alpha1().Migrations(m.Namespace).Delete(ctx, m.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Deleting an old Migration", "migration", klog.KObj(m))
			continue
		}
		// A completed Pod's bundle is kept for a re-home (forgetFinal); an older one than the
		// newest few is not the service's last state.
		if m.Status.Role == v1alpha1.RoleSource && m.Status.LedgerID != "" {
			if err := c.forgetBundle(ctx, m.Status.LedgerID); err != nil {
				klog.FromContext(ctx).Error(err, "Deleting an old Migration's bundle", "migration", klog.KObj(m))
			}
		}
	}
}

// migrationName is the generateName prefix: the workload's name, shortened to leave room.
func migrationName(workload string) string {
	if len(workload) > 40 {
		workload = strings.TrimRight(workload[:40], "-.")
	}
	return workload + "-"
}

// forgetCreating drops the guard once the informer shows the Migration.
func (c *Controller) forgetCreating(m *v1alpha1.Migration) {
	c.mu.Lock()
	delete(c.creating, workloadKey(m.Namespace, m.Spec.Workload.Kind, m.Spec.Workload.Name))
	c.mu.Unlock()
}

// refuseSecond ends a source Migration that must not go ahead, before it reaches the ledger
// (and before it waits for a --max-concurrent-migrations slot), whatever started it:
//   - its workload already has an open Migration here that is ahead of it: one that passed
//     this guard already (on the ledger, or queued), an arriving destination's, or an older one
//     (by creation time, then name: a resource version changes with every status write,
//     so it cannot order two Migrations for good). Two open migrations would give two
//     destinations, both Ready, and two copies for good.
//   - its Deployment is parked here: the service runs where it was moved, and a Migration
//     of it starts there.
//
// It reports whether it ended the Migration.
func (c *Controller) refuseSecond(ctx context.Context, m *v1alpha1.Migration) (bool, error) {
	ref := m.Spec.Workload
	// Past this guard already: on the ledger, or Pending with a reason (Queued, DryRun). A
	// Migration that passed stays ahead of any that has not.
	passed := func(m *v1alpha1.Migration) bool {
		return (m.Status.Phase != "" && m.Status.Phase != v1alpha1.PhasePending) || m.Status.Reason != ""
	}
	for _, other := range c.migrationsByIndex(indexWorkload, workloadKey(m.Namespace, ref.Kind, ref.Name)) {
		if other.UID == m.UID || other.Final() {
			continue
		}
		ahead := other.Status.Role == v1alpha1.RoleDestination || other.Spec.LedgerID != "" || passed(other) || (!passed(m) && earlier(other, m))
		if !ahead {
			continue
		}
		role := other.Status.Role
		if role == "" {
			role = "new"
		}
		msg := fmt.Sprintf("%s %s already has an open migration, %s (%s, %s, %s); one migration per workload at a time",
			ref.Kind, ref.Name, other.Name, other.Spec.Reason, role, other.Status.Phase)
		klog.FromContext(ctx).Info("Refused a second migration of a workload", "migration", klog.KObj(m), "other", klog.KObj(other))
		c.recorder.Event(m, corev1.EventTypeWarning, api.ReasonAlreadyMigrating, msg)
		return true, c.finish(ctx, m, v1alpha1.PhaseFailed, api.ReasonAlreadyMigrating, msg)
	}
	if ref.Kind == v1alpha1.KindDeployment {
		if d, err := c.deployments.Deployments(m.Namespace).Get(ref.Name); err == nil && d.Annotations[api.AnnotationMigratedTo] != "" {
			to := d.Annotations[api.AnnotationMigratedTo]
			msg := fmt.Sprintf("Deployment %s is parked here: the service runs in %s (migration %s); create the Migration there",
				ref.Name, to, d.Annotations[api.AnnotationMigrationID])
			c.recorder.Event(m, corev1.EventTypeWarning, api.ReasonMigratedAway, msg)
			return true, c.finish(ctx, m, v1alpha1.PhaseFailed, api.ReasonMigratedAway, msg)
		}
	}
	return false, nil
}

// earlier orders Migrations by creation, then name.
func earlier(a, b *v1alpha1.Migration) bool {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c < 0
	}
	return a.Name < b.Name
}
