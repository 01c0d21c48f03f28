package descheduler

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/locator"
)

// Resolve tells the locator where a client's service runs now: at the destination once a
// migration from here has a Ready destination, here while a copy of it runs here, else
// wherever the latest completed migration from here sent it.
func (c *Controller) Resolve(clientID string) (locator.Route, bool) {
	here := locator.Route{Cluster: c.cfg.ClusterID, Endpoint: c.cfg.PublicEndpoint}
	migs := c.migrationsByIndex(indexClient, clientID)
	var moved *v1alpha1.Migration
	for i := len(migs) - 1; i >= 0; i-- {
		m := migs[i]
		if m.Status.Role == v1alpha1.RoleSource && m.Status.Phase == v1alpha1.PhaseReady {
			return locator.Route{Cluster: m.Status.Destination, Endpoint: m.Status.DestinationEndpoint}, true
		}
		if moved == nil && m.Status.Role == v1alpha1.RoleSource && m.Status.Phase == v1alpha1.PhaseCompleted {
			moved = m
		}
	}
	objs, _ := c.podIndex.ByIndex(indexPodClient, clientID)
	for _, obj := range objs {
		if p := obj.(*corev1.Pod); p.DeletionTimestamp == nil && p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
			return here, true
		}
	}
	// A destination migration that is Ready or Completed here: the pods are on their way.
	for i := len(migs) - 1; i >= 0; i-- {
		m := migs[i]
		if m.Status.Role == v1alpha1.RoleDestination && (m.Status.Phase == v1alpha1.PhaseReady || m.Status.Phase == v1alpha1.PhaseCompleted) {
			if moved == nil || m.CreationTimestamp.After(moved.CreationTimestamp.Time) {
				return here, true
			}
			break
		}
	}
	if moved != nil {
		return locator.Route{Cluster: moved.Status.Destination, Endpoint: moved.Status.DestinationEndpoint}, true
	}
	return locator.Route{}, false
}
