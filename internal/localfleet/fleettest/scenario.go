package fleettest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	edgemigratev1alpha1 "github.com/edgemigrate/edgemigrate/api/generated/clientset/versioned/typed/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/localfleet"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/locator"
)

// Drive reports a car's position to every cluster's locator with its token, as a car does
// to the road side units it passes.
func Drive(ctx context.Context, f *localfleet.Fleet, car, token string, p geo.Point) error {
	for _, e := range f.Edges {
		if err := locator.NewClient(e.LocatorURL, f.CarClient(10*time.Second, false)).ReportLocation(ctx, car, token, p); err != nil {
			return fmt.Errorf("reporting %s at %v to %s: %w", car, p, e.ID, err)
		}
	}
	return nil
}

// State describes every cluster's migrations and pods in namespace ns, for a failure's
// message.
func State(ctx context.Context, f *localfleet.Fleet, ns string) string {
	var b strings.Builder
	for _, e := range f.Edges {
		if c, err := edgemigratev1alpha1.NewForConfig(e.Config); err == nil {
			if list, err := c.Migrations(ns).List(ctx, metav1.ListOptions{}); err == nil {
				for _, m := range list.Items {
					fmt.Fprintf(&b, "%s: migration %s role=%s phase=%s reason=%s dest=%s msg=%q bids=%v excluded=%v\n", e.ID, m.Name,
						m.Status.Role, m.Status.Phase, m.Spec.Reason, m.Status.Destination, m.Status.Message, m.Status.Bids, m.Status.Excluded)
				}
			}
		}
		pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "%s: pod %s phase=%s node=%q deleting=%v", e.ID, p.Name, p.Status.Phase, p.Spec.NodeName, p.DeletionTimestamp != nil)
			for _, cs := range p.Status.ContainerStatuses {
				fmt.Fprintf(&b, " %s(ready=%v restarts=%d waiting=%v)", cs.Name, cs.Ready, cs.RestartCount, cs.State.Waiting != nil)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Image is the reference of repository's image in the OCI layout the clusters' registries
// serve ($EDGEMIGRATE_IMAGES, else bin/images).
func Image(t testing.TB, repository string) string {
	t.Helper()
	dir := os.Getenv(localcluster.ImagesDirEnv)
	if dir == "" {
		bin, err := localcluster.FindBinDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(bin, "images")
	}
	built, err := images.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		if strings.HasPrefix(b.Ref, images.Registry+"/"+repository+":") {
			return b.Ref
		}
	}
	t.Fatalf("no %s image in %s (make images builds it)", repository, dir)
	return ""
}
