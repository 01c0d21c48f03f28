package webhook

import (
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// ImageIndex maps image references to the sizes nodes report in status.images. Admission
// reads it lock-free; node events rebuild it whole (edge clusters have few nodes).
type ImageIndex struct {
	sizes atomic.Pointer[map[string]int64]
}

// Rebuild replaces the index with the images of nodes. When nodes disagree on an image's
// size, the largest wins: a destination may have to pull all of it.
func (ix *ImageIndex) Rebuild(nodes []*corev1.Node) {
	sizes := make(map[string]int64)
	for _, n := range nodes {
		for _, img := range n.Status.Images {
			if img.SizeBytes <= 0 {
				continue
			}
			for _, name := range img.Names {
				key := normalizeImage(name)
				if img.SizeBytes > sizes[key] {
					sizes[key] = img.SizeBytes
				}
			}
		}
	}
	ix.sizes.Store(&sizes)
}

// Size returns the size of image, if some node knows it.
func (ix *ImageIndex) Size(image string) (int64, bool) {
	sizes := ix.sizes.Load()
	if sizes == nil {
		return 0, false
	}
	size, ok := (*sizes)[normalizeImage(image)]
	return size, ok
}

// normalizeImage spells a reference the way container runtimes report it, so that "nginx"
// in a pod and "docker.io/library/nginx:latest" in status.images match.
func normalizeImage(ref string) string {
	name, rest := ref, ""
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name, rest = ref[:i], ref[i:]
	}
	// A tag is a colon after the last slash; a colon before it is a registry port.
	if rest == "" && strings.LastIndexByte(name, ':') <= strings.LastIndexByte(name, '/') {
		rest = ":latest"
	}
	domain, _, found := strings.Cut(name, "/")
	switch {
	case !found:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(domain, ".:") && domain != "localhost":
		name = "docker.io/" + name
	}
	return name + rest
}
