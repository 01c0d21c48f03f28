package descheduler

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
)

// A parked Deployment is the copy a migration left behind: scaled to zero and annotated
// with where the service went (api.AnnotationMigratedTo), so the service can come back to
// it. edgemigrate writes migrated-to and replicas 0 together, and clears migrated-to in
// the same write that scales it up again (a service coming back, a re-home): a parked
// Deployment with replicas is someone else's doing (by hand, GitOps) and a second copy.

// strayScaleUp reports whether d is parked and yet has replicas.
func strayScaleUp(d *appsv1.Deployment) bool {
	return d.Annotations[api.AnnotationMigratedTo] != "" && ptr.Deref(d.Spec.Replicas, 1) > 0
}

// onDeployment is the Deployment informer's hook: a stray scale-up is handled at once.
func (c *Controller) onDeployment(d *appsv1.Deployment) {
	if strayScaleUp(d) {
		c.queue.Add(homesKey)
	}
}

// checkParked scales every stray scale-up back to zero, with a Warning Event on the
// Deployment and on its Migration that says where the service runs and how to bring it
// back. A parked copy whose service the ledger homes here again is the re-home's
// (restoreHomed), not a stray one.
func (c *Controller) checkParked(ctx context.Context) error {
	deps, err := c.deployments.List(labels.Everything())
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range deps {
		if !strayScaleUp(d) {
			continue
		}
		if h, ok := c.homeOf(originOf(c.cfg.ClusterID, &d.ObjectMeta)); ok && h.Cluster == c.cfg.ClusterID {
			continue
		}
		errs = append(errs, c.parkAgain(ctx, d))
	}
	return errors.Join(errs...)
}

// parkAgain scales a stray scale-up back to zero, from the version read: if edgemigrate
// itself scaled it up meanwhile (clearing migrated-to), the patch fails and nothing is lost.
func (c *Controller) parkAgain(ctx context.Context, d *appsv1.Deployment) error {
	to, id := d.Annotations[api.AnnotationMigratedTo], d.Annotations[api.AnnotationMigrationID]
	n := ptr.Deref(d.Spec.Replicas, 1)
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"replicas":0}}`, d.ResourceVersion)
	if _, err := c.kube.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling parked Deployment %s/%s back to zero: %w", d.Namespace, d.Name, err)
	}
	c.metrics.parkedScaleUps.Inc()
	msg := fmt.Sprintf("Deployment %s was scaled to %d replicas, but it is parked: the service runs in %s (migration %s). Scaled back to 0 so that one copy serves; "+
		"to bring the service back here, create a Manual Migration of it in %s", d.Name, n, to, id, to)
	klog.FromContext(ctx).Info("Scaled a parked Deployment back to zero", "deployment", klog.KObj(d), "replicas", n, "migratedTo", to, "migration", id)
	c.recorder.Event(d, corev1.EventTypeWarning, api.EventParkedScaleUp, msg)
	for _, m := range c.migrationsByIndex(indexLedgerID, id) {
		c.recorder.Event(m, corev1.EventTypeWarning, api.EventParkedScaleUp, msg)
	}
	return nil
}
