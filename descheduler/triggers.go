package descheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/geo"
)

// retryAfterFailure keeps a trigger from starting the same doomed migration again and again
// when no cluster can take the workload; the failed Migration and its Event say why.
const retryAfterFailure = 30 * time.Second

// triggerLoop looks for unschedulable opted-in pods, and for clients out of coverage, twice
// a second. Location updates also check their client at once (OnLocation).
func (c *Controller) triggerLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.checkOffload(ctx)
		for _, client := range c.podIndex.ListIndexFuncValues(indexPodClient) {
			c.checkClient(ctx, client)
		}
	}
}

// checkOffload starts an InsufficientResources migration for each opted-in workload with a
// pod that the Jetson fit has left unschedulable for longer than --offload-after.
func (c *Controller) checkOffload(ctx context.Context) {
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if p.Spec.SchedulerName != c.o.SchedulerName || p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil {
			continue
		}
		since, ok := unschedulableSince(p)
		if !ok || c.now().Sub(since) < c.o.OffloadAfter {
			continue
		}
		if p.Annotations[api.AnnotationNotMigratable] != "" {
			continue
		}
		ref, ok := workloadOf(p)
		if !ok {
			continue
		}
		c.startMigration(ctx, p, ref, v1alpha1.ReasonInsufficientResources, "", nil,
			fmt.Sprintf("pod %s unschedulable since %s", p.Name, since.Format(time.RFC3339)))
	}
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

// checkClient starts a ClientMobility migration for each workload serving the client here,
// once the client is beyond the coverage radius plus the hysteresis.
func (c *Controller) checkClient(ctx context.Context, clientID string) {
	loc, ok := c.locations.Location(clientID)
	if !ok || !c.coverage.Left(loc) {
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
		c.startMigration(ctx, p, ref, v1alpha1.ReasonClientMobility, clientID, &loc,
			fmt.Sprintf("client %s is %.0f m away, beyond the %.0f m coverage", clientID, c.coverage.Distance(loc), c.o.CoverageRadius))
	}
}

// startMigration creates a source Migration for a workload unless one is open, one failed
// recently, or the workload has already left.
func (c *Controller) startMigration(ctx context.Context, p *corev1.Pod, ref v1alpha1.WorkloadReference, reason, clientID string, loc *geo.Point, why string) {
	key := workloadKey(p.Namespace, ref.Kind, ref.Name)
	for _, m := range c.migrationsByIndex(indexWorkload, key) {
		if !m.Final() {
			return // moving already, or arriving here
		}
		if m.Status.Phase != v1alpha1.PhaseCompleted && m.Status.CompletionTime != nil && c.now().Sub(m.Status.CompletionTime.Time) < retryAfterFailure {
			return
		}
	}
	if ref.Kind == v1alpha1.KindDeployment {
		if d, err := c.deployments.Deployments(p.Namespace).Get(ref.Name); err != nil || ptrValue(d.Spec.Replicas, 1) == 0 {
			return
		}
	}
	c.mu.Lock()
	if t, ok := c.creating[key]; ok && c.now().Sub(t) < 30*time.Second {
		c.mu.Unlock()
		return
	}
	c.creating[key] = c.now()
	c.mu.Unlock()

	m := &v1alpha1.Migration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: migrationName(ref.Name), Namespace: p.Namespace},
		Spec:       v1alpha1.MigrationSpec{Workload: ref, Reason: reason, ClientID: clientID},
	}
	if loc != nil {
		m.Spec.ClientLocation = &v1alpha1.Location{Lat: loc.Lat, Lon: loc.Lon}
	}
	created, err := c.migs.Create(ctx, m)
	if err != nil {
		c.mu.Lock()
		delete(c.creating, key)
		c.mu.Unlock()
		klog.ErrorS(err, "Creating a Migration", "workload", key, "reason", reason)
		return
	}
	c.pruneHistory(ctx, key)
	c.metrics.triggers.WithLabelValues(reason).Inc()
	klog.InfoS("Migration triggered", "migration", klog.KObj(created), "workload", key, "reason", reason, "why", why)
	c.recorder.Eventf(p, corev1.EventTypeNormal, "MigrationTriggered", "Migration %s (%s): %s", created.Name, reason, why)
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
		if err := c.migs.Delete(ctx, m.Namespace, m.Name); err != nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "Deleting an old Migration", "migration", klog.KObj(m))
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
