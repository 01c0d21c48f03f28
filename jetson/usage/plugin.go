package usage

import (
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// NodeHandler keeps the cache's nodes current from a node informer.
func (c *Cache) NodeHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.setNode(obj) },
		UpdateFunc: func(_, obj any) { c.setNode(obj) },
		DeleteFunc: func(obj any) {
			if n, ok := unwrap(obj).(*corev1.Node); ok {
				c.DeleteNode(n.Name)
			}
		},
	}
}

// PodHandler keeps the cache's pods current from a pod informer.
func (c *Cache) PodHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.setPod(obj) },
		UpdateFunc: func(_, obj any) { c.setPod(obj) },
		DeleteFunc: func(obj any) {
			if p, ok := unwrap(obj).(*corev1.Pod); ok {
				c.DeletePod(p.UID)
			}
		},
	}
}

func (c *Cache) setNode(obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		c.SetNode(n)
	}
}

func (c *Cache) setPod(obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		c.SetPod(p)
	}
}

// unwrap returns the last known object of a deletion the informer missed.
func unwrap(obj any) any {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}
