package descheduler

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/gateway"
	"github.com/edgemigrate/edgemigrate/locator"
)

// placement is where a client's service is, as this cluster sees it.
type placement struct {
	// here: the service is this cluster's, Ready or on its way.
	here bool
	// elsewhere is the cluster that runs it, when not here; Cluster "" when unknown.
	elsewhere locator.Route
}

// place decides where a client's service is, in make-before-break order:
//  1. a migration from here has a Ready destination: there;
//  2. a Ready pod of it runs here: here;
//  3. a migration to here is under way (Creating), or was given back (Failed, Aborted),
//     more recently than any migration from here completed: its source, which still serves;
//  4. the latest completed migration from here: its destination, unless a migration to
//     here since is Ready or Completed (the pods are on their way): here;
//  5. a pod of it exists here, not Ready yet: here;
//  6. unknown.
func (c *Controller) place(clientID string) placement {
	migs := c.migrationsByIndex(indexClient, clientID)
	var moved, arriving *v1alpha1.Migration
	for i := len(migs) - 1; i >= 0; i-- {
		m := migs[i]
		if m.Status.Role == v1alpha1.RoleSource && m.Status.Phase == v1alpha1.PhaseReady {
			return placement{elsewhere: locator.Route{Cluster: m.Status.Destination, Endpoint: m.Status.DestinationEndpoint}}
		}
		if moved == nil && m.Status.Role == v1alpha1.RoleSource && m.Status.Phase == v1alpha1.PhaseCompleted {
			moved = m
		}
		if arriving == nil && m.Status.Role == v1alpha1.RoleDestination {
			arriving = m
		}
	}
	pods, _ := c.podIndex.ByIndex(indexPodClient, clientID)
	starting := false
	for _, obj := range pods {
		p := obj.(*corev1.Pod)
		if podReady(p) {
			return placement{here: true}
		}
		starting = starting || (p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed)
	}
	if arriving != nil && (moved == nil || arriving.CreationTimestamp.After(moved.CreationTimestamp.Time)) {
		switch arriving.Status.Phase {
		case v1alpha1.PhaseReady, v1alpha1.PhaseCompleted:
			// Unless the copy here stood down: the ledger homes the service where it points.
			if to, ok := c.parkedAt(arriving); ok {
				return placement{elsewhere: to}
			}
			return placement{here: true}
		case v1alpha1.PhaseCreating, v1alpha1.PhaseFailed, v1alpha1.PhaseAborted:
			if ep, ok := c.endpoints.Load(arriving.Status.Source); ok {
				return placement{elsewhere: locator.Route{Cluster: arriving.Status.Source, Endpoint: ep.(string)}}
			}
		}
	}
	if moved != nil {
		return placement{elsewhere: locator.Route{Cluster: moved.Status.Destination, Endpoint: moved.Status.DestinationEndpoint}}
	}
	return placement{here: starting}
}

// parkedAt is where a destination Migration's copy points once parked here (stood down:
// scaled to zero, migrated-to its home), when it is.
func (c *Controller) parkedAt(m *v1alpha1.Migration) (locator.Route, bool) {
	if m.Spec.Workload.Kind != v1alpha1.KindDeployment {
		return locator.Route{}, false
	}
	d, err := c.deployments.Deployments(m.Namespace).Get(m.Spec.Workload.Name)
	if err != nil || d.Annotations[api.AnnotationMigratedTo] == "" || ptr.Deref(d.Spec.Replicas, 1) != 0 {
		return locator.Route{}, false
	}
	to := d.Annotations[api.AnnotationMigratedTo]
	ep, _ := c.endpoints.Load(to)
	endpoint, _ := ep.(string)
	return locator.Route{Cluster: to, Endpoint: endpoint}, true
}

// deadRoute reports why the client's service cannot be sent on to cluster: the ledger says
// it is dead. Its copy does not answer, and the source takes the service back.
func (c *Controller) deadRoute(cluster string) (string, bool) {
	since, dead := c.deadCluster(cluster)
	if !dead {
		return "", false
	}
	return fmt.Sprintf("the service ran in cluster %s, dead on the ledger since %s; it is being re-homed", cluster, since), true
}

// Resolve tells the locator where a client's service runs now (see place); never a dead
// cluster: a local copy that serves, or nowhere known.
func (c *Controller) Resolve(clientID string) (locator.Route, bool) {
	p := c.place(clientID)
	if !p.here {
		if _, dead := c.deadRoute(p.elsewhere.Cluster); dead {
			backends, _ := c.backends(clientID)
			p = placement{here: len(backends) > 0}
			if !p.here {
				return locator.Route{}, false
			}
		}
	}
	if p.here {
		return locator.Route{Cluster: c.cfg.ClusterID, Endpoint: c.cfg.PublicEndpoint}, true
	}
	return p.elsewhere, p.elsewhere.Cluster != "" && p.elsewhere.Endpoint != ""
}

// Route tells the gateway where a client's requests go: to the Ready pods of its service
// here, or to the cluster that runs it (see place). Never to a dead cluster: a local copy
// serves if one is Ready, else the service is Unavailable, saying why.
func (c *Controller) Route(clientID string) gateway.Route {
	p := c.place(clientID)
	if !p.here {
		if why, dead := c.deadRoute(p.elsewhere.Cluster); dead {
			if backends, _ := c.backends(clientID); len(backends) > 0 {
				return gateway.Route{Kind: gateway.Local, Cluster: c.cfg.ClusterID, Backends: backends}
			}
			return gateway.Route{Kind: gateway.Unavailable, Cluster: c.cfg.ClusterID, Reason: why}
		}
		if p.elsewhere.Cluster == "" || p.elsewhere.Endpoint == "" {
			return gateway.Route{Kind: gateway.NotKnown, Cluster: p.elsewhere.Cluster}
		}
		return gateway.Route{Kind: gateway.Remote, Cluster: p.elsewhere.Cluster, Endpoint: p.elsewhere.Endpoint}
	}
	backends, reason := c.backends(clientID)
	if len(backends) == 0 {
		return gateway.Route{Kind: gateway.Unavailable, Cluster: c.cfg.ClusterID, Reason: reason}
	}
	return gateway.Route{Kind: gateway.Local, Cluster: c.cfg.ClusterID, Backends: backends}
}

// backends are the Ready pods of the client's service here, with their service port; when
// there is none, reason says why.
func (c *Controller) backends(clientID string) ([]gateway.Backend, string) {
	objs, _ := c.podIndex.ByIndex(indexPodClient, clientID)
	var backends []gateway.Backend
	var workloads, problems []string
	for _, obj := range objs {
		p := obj.(*corev1.Pod)
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		w := p.Annotations[api.AnnotationWorkload]
		if w == "" {
			w = workloadKey(p.Namespace, v1alpha1.KindPod, p.Name)
		}
		if !slices.Contains(workloads, w) {
			workloads = append(workloads, w)
		}
		if !podReady(p) || p.Status.PodIP == "" {
			continue
		}
		port, err := servicePort(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		backends = append(backends, gateway.Backend{Pod: p.Namespace + "/" + p.Name,
			Address: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port)))})
	}
	if len(workloads) > 1 {
		slices.Sort(workloads)
		// Two services for one car: sending its requests to either could answer wrongly.
		return nil, fmt.Sprintf("pods of %d workloads serve client %s here (%s); the gateway will not choose", len(workloads), clientID,
			strings.Join(workloads, ", "))
	}
	switch {
	case len(backends) > 0:
		slices.SortFunc(backends, func(a, b gateway.Backend) int { return strings.Compare(a.Pod, b.Pod) })
		return backends, ""
	case len(problems) > 0:
		slices.Sort(problems)
		return nil, strings.Join(problems, "; ")
	case len(workloads) == 0:
		return nil, "the service's pods are not created yet"
	}
	return nil, "no pod of the service is Ready yet"
}

// servicePort is the container port the gateway sends a pod's requests to: the one
// api.AnnotationServicePort names (name or number), else the one named api.ServicePortName.
func servicePort(p *corev1.Pod) (int32, error) {
	name := api.ServicePortName
	if v, ok := p.Annotations[api.AnnotationServicePort]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			if n < 1 || n > 65535 {
				return 0, fmt.Errorf("pod %s/%s: %s=%q is not a port number (1-65535)", p.Namespace, p.Name, api.AnnotationServicePort, v)
			}
			return int32(n), nil
		}
		if errs := validation.IsValidPortName(v); len(errs) > 0 {
			return 0, fmt.Errorf("pod %s/%s: %s=%q is neither a port number nor a port name: %s", p.Namespace, p.Name,
				api.AnnotationServicePort, v, strings.Join(errs, "; "))
		}
		name = v
	}
	for _, ctr := range p.Spec.Containers {
		for _, port := range ctr.Ports {
			if port.Name == name && (port.Protocol == "" || port.Protocol == corev1.ProtocolTCP) {
				return port.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s/%s has no TCP container port named %q (name or number it with %s)", p.Namespace, p.Name, name,
		api.AnnotationServicePort)
}
