package descheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// homesKey names the work of dead clusters and homes: marking silent clusters
// dead, re-homing the services they served, standing down superseded copies, and parking
// again the parked copies someone else scaled up (parked.go).
var homesKey = queueKey{Kind: keyHomes}

// markRetry paces MarkClusterDead after a not-yet: this cluster's idea of ledger time ran
// ahead of the ledger's.
const markRetry = 5 * time.Second

// homesCache is what syncHomes last read from the ledger: the dead clusters (the gateway
// never routes to one) and where each service is homed (a parked copy whose home is here is
// the re-home's, not a stray scale-up).
type homesCache struct {
	mu sync.RWMutex
	// dead maps a dead cluster's id to its DeadSince; known are the clusters on the ledger
	// (a home on a cluster removed since counts as dead).
	dead, known map[string]string
	homes       map[string]chaincode.Home
	// warned are the origins this process already said it cannot re-home (one Event each).
	warned map[string]bool
}

// deadCluster reports whether the ledger said cluster id is dead, and since when.
func (c *Controller) deadCluster(id string) (string, bool) {
	c.homes.mu.RLock()
	defer c.homes.mu.RUnlock()
	since, ok := c.homes.dead[id]
	return since, ok
}

// homeOf is the ledger's home of the service of origin, as last read.
func (c *Controller) homeOf(origin string) (chaincode.Home, bool) {
	c.homes.mu.RLock()
	defer c.homes.mu.RUnlock()
	h, ok := c.homes.homes[origin]
	return h, ok
}

// warnOnce reports whether origin was not warned about yet, and marks it.
func (c *Controller) warnOnce(origin string) bool {
	c.homes.mu.Lock()
	defer c.homes.mu.Unlock()
	if c.homes.warned == nil {
		c.homes.warned = map[string]bool{}
	}
	first := !c.homes.warned[origin]
	c.homes.warned[origin] = true
	return first
}

// onLedgerEvent queues the homes' work on the cluster-level events that concern it.
func (c *Controller) onLedgerEvent(ev ledger.Event) {
	switch ev.Type {
	case chaincode.EventClusterDead, chaincode.EventClusterRevived, chaincode.EventServiceRehomed:
		c.queue.Add(homesKey)
	}
}

// afterRegister runs once the cluster is on the ledger, before it takes clients: a cluster
// that was dead (partitioned, or down) stands down the copies the ledger has re-homed
// elsewhere before its gateway could serve them. Only that must succeed here (retried
// briefly, else Run fails and the process restarts); the rest of the homes' work is queued.
func (c *Controller) afterRegister(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	c.queue.Add(homesKey)
	if _, err := c.syncDead(ctx); err != nil {
		logger.Error(err, "Reading dead clusters before taking clients; the queued reconcile retries")
	}
	var last error
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 5},
		func(ctx context.Context) (bool, error) {
			if _, last = c.listHomes(ctx); last == nil {
				last = c.standDown(ctx)
			}
			if last != nil {
				logger.Error(last, "Standing down superseded copies before taking clients; retrying")
			}
			return last == nil, nil
		})
	if err != nil {
		return fmt.Errorf("standing down superseded copies before taking clients: %w", errors.Join(err, last))
	}
	return nil
}

// listHomes reads every home from the ledger and caches them by origin.
func (c *Controller) listHomes(ctx context.Context) ([]*chaincode.Home, error) {
	start := c.clock.Now()
	homes, err := c.ledger.ListHomes(ctx)
	c.metrics.ledgerCall("ListHomes", start, err)
	if err != nil {
		return nil, fmt.Errorf("listing the homes of services on the ledger: %w", err)
	}
	c.cacheHomes(homes)
	return homes, nil
}

func (c *Controller) cacheHomes(homes []*chaincode.Home) {
	byOrigin := make(map[string]chaincode.Home, len(homes))
	for _, h := range homes {
		if h != nil {
			byOrigin[h.Origin] = *h
		}
	}
	c.homes.mu.Lock()
	c.homes.homes = byOrigin
	c.homes.mu.Unlock()
}

// syncHomes reconciles dead clusters and homes, level-triggered from the ledger and the
// informers, so that at most one copy of each service serves:
//   - a parked Deployment scaled up by someone else is scaled back to zero (no ledger needed);
//   - a cluster silent longer than the ledger's dead-after window is marked dead;
//   - a service this cluster moved to a cluster now dead is re-homed here;
//   - a service homed here runs here: its parked copy is scaled up, or its Pod recreated;
//   - a copy hosted here as a destination whose service is homed elsewhere is removed.
func (c *Controller) syncHomes(ctx context.Context) (time.Duration, error) {
	errs := []error{c.checkParked(ctx)}
	next, err := c.syncDead(ctx)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	homes, err := c.listHomes(ctx)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	errs = append(errs, c.rehome(ctx, homes))
	c.cacheHomes(homes) // with the re-homes' answers
	errs = append(errs, c.restoreHomed(ctx, homes), c.standDown(ctx))
	return next, errors.Join(errs...)
}

// syncDead refreshes the dead clusters' cache and marks dead every other cluster silent
// longer than the ledger's dead-after window (plus the skew the contract allows). It says
// when the next cluster may be due.
func (c *Controller) syncDead(ctx context.Context) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	start := c.clock.Now()
	clusters, err := c.ledger.ListClusters(ctx)
	c.metrics.ledgerCall("ListClusters", start, err)
	if err != nil {
		return 0, fmt.Errorf("listing the clusters on the ledger: %w", err)
	}
	window := c.deadAfter(ctx) + chaincode.MaxClockSkew
	now := c.ledgerNow()
	dead, known := map[string]string{}, map[string]string{}
	var next time.Duration
	soonest := func(d time.Duration) {
		if next == 0 || d < next {
			next = d
		}
	}
	var errs []error
	for _, cl := range clusters {
		known[cl.ID] = cl.Endpoint
		if cl.Dead {
			dead[cl.ID] = cl.DeadSince
			continue
		}
		if cl.ID == c.cfg.ClusterID {
			continue
		}
		last, err := time.Parse(time.RFC3339Nano, cmp.Or(cl.LastReportAt, cl.RegisteredAt))
		if err != nil {
			continue
		}
		if wait := last.Add(window).Sub(now); wait > 0 {
			soonest(wait)
			continue
		}
		start := c.clock.Now()
		got, err := c.ledger.MarkClusterDead(ctx, cl.ID)
		c.metrics.ledgerCall("MarkClusterDead", start, err)
		switch chaincode.CodeOf(err) {
		case "":
			if err != nil {
				errs = append(errs, fmt.Errorf("marking cluster %s dead: %w", cl.ID, err))
				continue
			}
			dead[cl.ID] = got.DeadSince
			logger.Info("Marked a silent cluster dead", "cluster", cl.ID, "lastReport", cl.LastReportAt, "window", window)
		case chaincode.CodeNotYet:
			soonest(markRetry)
		case chaincode.CodeConflict:
			// Dead already, or it reported meanwhile: the next listing says which.
		default:
			errs = append(errs, fmt.Errorf("marking cluster %s dead: %w", cl.ID, err))
		}
	}
	c.homes.mu.Lock()
	newlyDead := false
	for id := range dead {
		_, was := c.homes.dead[id]
		newlyDead = newlyDead || !was
	}
	c.homes.dead, c.homes.known = dead, known
	c.homes.mu.Unlock()
	if newlyDead {
		// MarkClusterDead re-decides the open migrations it touches with one event, its
		// own: their sources and new destinations hear of it here, not at the next resync.
		c.enqueueOpenMigrations(ctx)
	}
	return next, errors.Join(errs...)
}

// enqueueOpenMigrations queues every migration open on the ledger.
func (c *Controller) enqueueOpenMigrations(ctx context.Context) {
	start := c.clock.Now()
	open, err := c.ledger.ListOpenMigrations(ctx)
	c.metrics.ledgerCall("ListOpenMigrations", start, err)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing open migrations on the ledger after a cluster died")
		return
	}
	for _, m := range open {
		c.queue.Add(queueKey{Kind: keyLedger, Name: m.ID})
	}
}

// deadAfter is the ledger's dead-after window.
func (c *Controller) deadAfter(ctx context.Context) time.Duration {
	start := c.clock.Now()
	cfg, err := c.ledger.GetLedgerConfig(ctx)
	c.metrics.ledgerCall("GetLedgerConfig", start, err)
	if err != nil {
		return chaincode.DefaultDeadAfter
	}
	return cfg.DeadAfter()
}

// rehome takes back each service this cluster moved to a cluster now dead; homes is
// updated in place with the ledger's answers.
func (c *Controller) rehome(ctx context.Context, homes []*chaincode.Home) error {
	logger := klog.FromContext(ctx)
	var errs []error
	for i, h := range homes {
		if h == nil || h.Source != c.cfg.ClusterID || h.Cluster == c.cfg.ClusterID {
			continue
		}
		since, dead := c.deadCluster(h.Cluster)
		c.homes.mu.RLock()
		_, known := c.homes.known[h.Cluster]
		c.homes.mu.RUnlock()
		if !known {
			since, dead = "its removal from the ledger", true
		}
		if !dead {
			continue
		}
		start := c.clock.Now()
		got, err := c.ledger.RehomeService(ctx, h.Origin)
		c.metrics.ledgerCall("RehomeService", start, err)
		if chaincode.CodeOf(err) == chaincode.CodeConflict {
			continue // revived, or re-homed meanwhile: the next listing says
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("re-homing the service of %s from dead cluster %s: %w", h.Origin, h.Cluster, err))
			continue
		}
		homes[i] = got
		c.metrics.rehomed.Inc()
		logger.Info("Re-homed a service from a dead destination", "origin", h.Origin, "dead", h.Cluster, "migration", h.MigrationID)
		for _, m := range c.migrationsByIndex(indexLedgerID, h.MigrationID) {
			c.recordOnWorkload(m, corev1.EventTypeWarning, api.EventDestinationDead,
				"%s, where migration %s moved the service, is dead on the ledger (since %s): the service runs here again", h.Cluster, h.MigrationID, since)
		}
	}
	return errors.Join(errs...)
}

// workloadMoving reports whether a Migration of the workload is open here: while one is,
// the ledger's state machine decides where the copies go, not the homes.
func (c *Controller) workloadMoving(namespace, kind, name string) bool {
	return slices.ContainsFunc(c.migrationsByIndex(indexWorkload, workloadKey(namespace, kind, name)),
		func(m *v1alpha1.Migration) bool { return !m.Final() })
}

// restoreHomed makes each service homed here run here. Level-triggered, so a crash between
// RehomeService and the scale-up ends the same: a parked copy of the origin is scaled back
// up, or, for a bare Pod, the Pod is recreated from the bundle the source kept; nothing is
// done while a copy of it serves here or a Migration of it is open.
func (c *Controller) restoreHomed(ctx context.Context, homes []*chaincode.Home) error {
	deps, err := c.deployments.List(labels.Everything())
	if err != nil {
		return err
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	slices.SortFunc(deps, func(a, b *appsv1.Deployment) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	var errs []error
	for _, h := range homes {
		if h == nil || h.Cluster != c.cfg.ClusterID {
			continue
		}
		var parked *appsv1.Deployment
		present, moving := false, false
		for _, d := range deps {
			if originOf(c.cfg.ClusterID, &d.ObjectMeta) != h.Origin {
				continue
			}
			present = true
			moving = moving || c.workloadMoving(d.Namespace, v1alpha1.KindDeployment, d.Name)
			if d.Annotations[api.AnnotationMigratedTo] != "" && parked == nil {
				parked = d
			} else if d.Annotations[api.AnnotationMigratedTo] == "" {
				parked = nil // a copy serves already
				break
			}
		}
		for _, p := range pods {
			if p.DeletionTimestamp == nil && originOf(c.cfg.ClusterID, &p.ObjectMeta) == h.Origin {
				present = true
				moving = moving || c.workloadMoving(p.Namespace, v1alpha1.KindPod, p.Name)
			}
		}
		if moving || (parked == nil && present) {
			continue
		}
		// The listing may predate a migration of the service away that completed since
		// (the Migration was still open then): the ledger's word now, read after the
		// Migrations were, decides.
		if now, err := c.currentHome(ctx, h.Origin); err != nil || now.Cluster != c.cfg.ClusterID {
			errs = append(errs, err)
			continue
		}
		if parked != nil {
			errs = append(errs, c.scaleUpParked(ctx, parked, h))
		} else {
			errs = append(errs, c.recreatePod(ctx, h))
		}
	}
	return errors.Join(errs...)
}

// currentHome reads the home of origin from the ledger, for a step that must not act on
// a stale listing; no home reads as the zero Home.
func (c *Controller) currentHome(ctx context.Context, origin string) (chaincode.Home, error) {
	start := c.clock.Now()
	h, err := c.ledger.GetHome(ctx, origin)
	c.metrics.ledgerCall("GetHome", start, err)
	switch {
	case chaincode.CodeOf(err) == chaincode.CodeNotFound:
		return chaincode.Home{}, nil
	case err != nil:
		return chaincode.Home{}, fmt.Errorf("reading the home of %s: %w", origin, err)
	}
	return *h, nil
}

// scaleUpParked scales a parked copy back up to the replicas it ran with, clearing
// migrated-to in the same patch (so it is not taken for a stray scale-up), from the version
// read (so a concurrent change is not overwritten).
func (c *Controller) scaleUpParked(ctx context.Context, d *appsv1.Deployment, h *chaincode.Home) error {
	n := max(c.parkedReplicas(ctx, d), ptr.Deref(d.Spec.Replicas, 1))
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"annotations":{%q:null}},"spec":{"replicas":%d}}`,
		d.ResourceVersion, api.AnnotationMigratedTo, n)
	if _, err := c.kube.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling parked Deployment %s/%s back up: %w", d.Namespace, d.Name, err)
	}
	from := cmp.Or(h.RehomedFrom, d.Annotations[api.AnnotationMigratedTo])
	klog.FromContext(ctx).Info("Scaled a parked copy back up: the service is homed here", "deployment", klog.KObj(d), "replicas", n, "from", from)
	c.recorder.Eventf(d, corev1.EventTypeNormal, api.EventRehomed, "The ledger homes the service here again (it left %s): scaled back up to %d replicas", from, n)
	return nil
}

// parkedReplicas is how many replicas a parked copy ran with: the migration that parked it
// says so (its Migration here, else the ledger's record), else 1.
func (c *Controller) parkedReplicas(ctx context.Context, d *appsv1.Deployment) int32 {
	id := d.Annotations[api.AnnotationMigrationID]
	if id == "" {
		return 1
	}
	for _, m := range c.migrationsByIndex(indexLedgerID, id) {
		if m.Status.Replicas > 0 {
			return m.Status.Replicas
		}
	}
	start := c.clock.Now()
	lm, err := c.ledger.GetMigration(ctx, id)
	c.metrics.ledgerCall("GetMigration", start, err)
	if err == nil && lm.Metadata.Replicas > 0 {
		return lm.Metadata.Replicas
	}
	return 1
}

// recreatePod recreates the bare Pod of a service homed here from the bundle its completed
// migration kept (forgetFinal keeps a Pod's), or says plainly that it cannot.
func (c *Controller) recreatePod(ctx context.Context, h *chaincode.Home) error {
	logger := klog.FromContext(ctx)
	var done []*v1alpha1.Migration
	for _, obj := range c.migIndexer.List() {
		m := obj.(*v1alpha1.Migration)
		if m.Status.Role == v1alpha1.RoleSource && m.Status.Phase == v1alpha1.PhaseCompleted && m.Spec.Workload.Kind == v1alpha1.KindPod {
			done = append(done, m)
		}
	}
	// The newest first: the service's last state here.
	slices.SortFunc(done, func(a, b *v1alpha1.Migration) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	var moved *v1alpha1.Migration
	for _, m := range done {
		if moved == nil && m.Status.Destination == h.RehomedFrom {
			moved = m
		}
		cm, err := c.configMaps.ConfigMaps(c.cfg.Namespace).Get(bundleConfigMapName(m.Status.LedgerID))
		if err != nil {
			continue
		}
		b, err := decodeBundle(cm.BinaryData[bundleKey])
		if err != nil || b.Origin != h.Origin || b.Workload.Pod == nil {
			continue
		}
		p := b.Workload.Pod.DeepCopy()
		p.Namespace = m.Namespace
		// The descheduler creates no workload as itself: as the host identity, held to the
		// hosting rules, as a destination would (this cluster hosts its own service back).
		kube, err := c.hostClient(ctx, c.cfg.ClusterID, p.Namespace)
		if err != nil {
			return fmt.Errorf("recreating Pod %s/%s of a service homed here again: %w", p.Namespace, p.Name, err)
		}
		_, err = kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			if c.warnOnce(h.Origin) {
				c.recorder.Eventf(m, corev1.EventTypeWarning, api.EventCannotRehome,
					"the ledger homes the service here again (it left %s), but its Pod %s cannot be recreated: %v; recreate it by hand", h.RehomedFrom, p.Name, err)
			}
			return nil
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("recreating Pod %s/%s of a service homed here again: %w", p.Namespace, p.Name, err)
		}
		logger.Info("Recreated a bare Pod: the service is homed here again", "pod", klog.KObj(p), "from", h.RehomedFrom, "bundle", m.Status.LedgerID)
		c.recorder.Eventf(m, corev1.EventTypeNormal, api.EventRehomed, "The ledger homes the service here again (it left %s): recreated Pod %s from the bundle of %s",
			h.RehomedFrom, p.Name, m.Status.LedgerID)
		return c.forgetBundle(ctx, m.Status.LedgerID)
	}
	msg := fmt.Sprintf("the ledger homes service %s here again (it left %s), but nothing here can run it: no parked Deployment and no kept bundle of its Pod; recreate it by hand",
		h.Origin, h.RehomedFrom)
	if !c.warnOnce(h.Origin) {
		return nil
	}
	logger.Error(nil, "Cannot re-home a service", "origin", h.Origin, "from", h.RehomedFrom, "why", msg)
	if moved != nil {
		c.recorder.Event(moved, corev1.EventTypeWarning, api.EventCannotRehome, msg)
	}
	return nil
}

// standDown removes each copy this cluster hosts as a destination (migrated-from) whose
// service the ledger homes in another cluster: this one was dead or partitioned, and its
// source took the service back. A Deployment is parked (scaled to zero, migrated-to its
// home), a Pod deleted, so at most one copy serves. A copy whose Migration is open is the
// ledger's state machine's.
func (c *Controller) standDown(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	var errs []error
	superseded := func(obj metav1.Object, kind string) (chaincode.Home, bool) {
		if obj.GetAnnotations()[api.AnnotationMigratedFrom] == "" {
			return chaincode.Home{}, false
		}
		origin := obj.GetAnnotations()[api.AnnotationOrigin]
		if h, ok := c.homeOf(origin); !ok || h.Cluster == c.cfg.ClusterID || c.workloadMoving(obj.GetNamespace(), kind, obj.GetName()) {
			return chaincode.Home{}, false
		}
		// As in restoreHomed: the listing may predate the completion of the migration that
		// brought the copy here; the ledger's word now decides.
		h, err := c.currentHome(ctx, origin)
		if err != nil {
			errs = append(errs, err)
			return chaincode.Home{}, false
		}
		return h, h.Cluster != "" && h.Cluster != c.cfg.ClusterID
	}
	record := func(obj metav1.Object, h chaincode.Home, what string) {
		c.metrics.superseded.Inc()
		msg := fmt.Sprintf("The ledger homes this service in %s (since %s); this cluster's copy is superseded: %s", h.Cluster, h.Since, what)
		logger.Info("Stood down a superseded copy", "kind", what, "object", klog.KRef(obj.GetNamespace(), obj.GetName()), "home", h.Cluster)
		for _, m := range c.migrationsByIndex(indexLedgerID, obj.GetAnnotations()[api.AnnotationMigrationID]) {
			c.recorder.Event(m, corev1.EventTypeWarning, api.EventSuperseded, msg)
		}
	}
	deps, err := c.deployments.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, d := range deps {
		if ptr.Deref(d.Spec.Replicas, 1) == 0 || d.Annotations[api.AnnotationMigratedTo] != "" {
			continue
		}
		h, ok := superseded(d, v1alpha1.KindDeployment)
		if !ok {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"annotations":{%q:%q}},"spec":{"replicas":0}}`,
			d.ResourceVersion, api.AnnotationMigratedTo, h.Cluster)
		if _, err := c.kube.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("standing down superseded Deployment %s/%s: %w", d.Namespace, d.Name, err))
			continue
		}
		c.recorder.Eventf(d, corev1.EventTypeWarning, api.EventSuperseded, "The ledger homes this service in %s: scaled to zero", h.Cluster)
		record(d, h, "scaled Deployment "+d.Name+" to zero")
	}
	pods, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || metav1.GetControllerOf(p) != nil {
			continue
		}
		h, ok := superseded(p, v1alpha1.KindPod)
		if !ok {
			continue
		}
		// As the host identity that created it: the descheduler deletes no pod as itself.
		kube, err := c.hostClient(ctx, p.Annotations[api.AnnotationMigratedFrom], p.Namespace)
		if err == nil {
			err = kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(p.UID)}})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("standing down superseded Pod %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		record(p, h, "deleted Pod "+p.Name)
	}
	return errors.Join(errs...)
}
