package webhook

import (
	"context"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// lookupTimeout bounds a read from the API server on a cache miss; the API server gives
// the whole call timeoutSeconds (5).
const lookupTimeout = 2 * time.Second

// ClusterState is State backed by informer caches: namespaces, ReplicaSets and nodes, each
// stripped to the fields the webhook reads. A namespace or ReplicaSet created just before
// the pod may not have reached the cache yet; it is then read from the API server.
type ClusterState struct {
	client      kubernetes.Interface
	factory     informers.SharedInformerFactory
	namespaces  corelisters.NamespaceLister
	replicaSets appslisters.ReplicaSetLister
	images      ImageIndex
	synced      []cache.InformerSynced
}

// NewClusterState prepares the informers; Start runs them.
func NewClusterState(client kubernetes.Interface) (*ClusterState, error) {
	s := &ClusterState{client: client, factory: informers.NewSharedInformerFactory(client, 0)}
	nsInformer := s.factory.Core().V1().Namespaces()
	rsInformer := s.factory.Apps().V1().ReplicaSets()
	nodeInformer := s.factory.Core().V1().Nodes()
	for _, inf := range []cache.SharedIndexInformer{nsInformer.Informer(), rsInformer.Informer(), nodeInformer.Informer()} {
		// Full objects would hold every pod template and node status in memory for nothing.
		if err := inf.SetTransform(strip); err != nil {
			return nil, fmt.Errorf("setting informer transform: %w", err)
		}
		s.synced = append(s.synced, inf.HasSynced)
	}
	s.namespaces = nsInformer.Lister()
	s.replicaSets = rsInformer.Lister()
	nodes := nodeInformer.Lister()
	rebuild := func() {
		list, err := nodes.List(labels.Everything())
		if err != nil {
			klog.ErrorS(err, "Listing nodes from the cache")
			return
		}
		s.images.Rebuild(list)
	}
	reg, err := nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { rebuild() },
		UpdateFunc: func(old, cur any) {
			// Heartbeats update every node every few seconds; images change rarely.
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if ok1 && ok2 && reflect.DeepEqual(o.Status.Images, n.Status.Images) {
				return
			}
			rebuild()
		},
		DeleteFunc: func(any) { rebuild() },
	})
	if err != nil {
		return nil, fmt.Errorf("watching nodes: %w", err)
	}
	// Synced once the index has seen every node, not only once the cache has.
	s.synced = append(s.synced, reg.HasSynced)
	return s, nil
}

// Start runs the informers until ctx ends.
func (s *ClusterState) Start(ctx context.Context) { s.factory.Start(ctx.Done()) }

// WaitForSync waits until every cache has synced.
func (s *ClusterState) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("waiting for namespace, ReplicaSet and node caches: %w", context.Cause(ctx))
	}
	return nil
}

// Synced reports whether every cache has synced: readiness.
func (s *ClusterState) Synced() error {
	for _, f := range s.synced {
		if !f() {
			return fmt.Errorf("caches not synced yet")
		}
	}
	return nil
}

// NamespaceLabels implements State.
func (s *ClusterState) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns, err := s.namespaces.Get(name)
	if err == nil {
		return ns.Labels, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	live, err := s.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return live.Labels, nil
}

// ReplicaSetController implements State.
func (s *ClusterState) ReplicaSetController(ctx context.Context, namespace, name string) (*metav1.OwnerReference, error) {
	rs, err := s.replicaSets.ReplicaSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		rs, err = s.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, err
	}
	return metav1.GetControllerOf(rs), nil
}

// ImageSize implements State.
func (s *ClusterState) ImageSize(image string) (int64, bool) { return s.images.Size(image) }

// strip keeps what the webhook reads of each cached object.
func strip(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Labels: o.Labels, ResourceVersion: o.ResourceVersion}}, nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace, OwnerReferences: o.OwnerReferences, ResourceVersion: o.ResourceVersion}}, nil
	case *corev1.Node:
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: o.Name, ResourceVersion: o.ResourceVersion},
			Status: corev1.NodeStatus{Images: o.Status.Images}}, nil
	default:
		// Tombstones and anything else pass through as they are.
		return obj, nil
	}
}
