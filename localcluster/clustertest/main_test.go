package clustertest

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgemigrate/edgemigrate/localcluster"
)

var shared Shared

func TestMain(m *testing.M) { Main(m, 1, localcluster.Options{Name: "clustertest"}, &shared) }

// TestE2ESharedClusterNamespaces: tests sharing a package's cluster each get a namespace of
// their own, ready for pods, and deleted when the test ends.
func TestE2ESharedClusterNamespaces(t *testing.T) {
	c := shared.Require(t)[0]
	ctx := context.Background()
	names := make(chan string, 2)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"first", "second"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ns := Namespace(t, c, map[string]string{"edgemigrate.io/test": name})
				names <- ns
				if !strings.HasPrefix(ns, "teste2esharedclusternamespaces-group-") {
					t.Errorf("namespace %q not named after the test", ns)
				}
				got, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got.Labels["edgemigrate.io/test"] != name {
					t.Errorf("labels %v", got.Labels)
				}
				if _, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err != nil {
					t.Errorf("namespace returned before its default ServiceAccount exists: %v", err)
				}
			})
		}
	})
	close(names)
	var seen []string
	for ns := range names {
		seen = append(seen, ns)
		got, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil && got.DeletionTimestamp == nil {
			t.Errorf("namespace %s not deleted after its test ended", ns)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("tests got namespaces %v, want two distinct", seen)
	}
}
