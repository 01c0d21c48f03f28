package descheduler

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
	"github.com/edgemigrate/edgemigrate/manifests"
)

// applyMigrationCRD creates the Migration CRD and waits until it is served.
func applyMigrationCRD(ctx context.Context, t *testing.T, cfg *rest.Config) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(manifests.MigrationCRDYAML, &obj.Object); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := crds.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the Migration CRD is not served: %v", err)
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestE2EServeGivesUpLease: a descheduler on a real API server whose ledger cannot be
// reached (a closed port) takes the Lease, says on /readyz that the ledger is unreachable,
// and once --register-timeout has passed gives the Lease up (its holder cleared, so a
// standby need not wait for it to expire) and Serve returns the error: the process exits
// non-zero and a restart or a standby takes over.
func TestE2EServeGivesUpLease(t *testing.T) {
	c := clustertest.Start(t, 1, localcluster.Options{Name: "lease", NoKwok: true})[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: api.SystemNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	applyMigrationCRD(ctx, t, c.Config)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.Namespace, o.ClusterID, o.Location = api.SystemNamespace, "edge-a", "35.888,128.611"
	o.PublicEndpoint = "https://" + ln.Addr().String()
	o.LedgerURL = "https://" + closedPort(t)
	o.SelfSignedIdentity, o.SelfSignedIdentityDir, o.SelfSignedMSPID = true, t.TempDir(), "MSP-edge-a"
	o.RegisterTimeout = 10 * time.Second
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, o, c.Config, ln) }()

	// While it retries, /readyz says why it is not ready.
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var readyz string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := insecure.Get(o.PublicEndpoint + "/readyz")
		if err != nil {
			return false, nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		readyz = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "ledger unreachable since"), nil
	})
	if err != nil {
		t.Errorf("/readyz never said the ledger is unreachable; last %q", readyz)
	}
	lease, err := c.Client.CoordinationV1().Leases(api.SystemNamespace).Get(ctx, LeaseName+"-edge-a", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("the descheduler does not hold its Lease while registering: %+v, %v", lease, err)
	}

	select {
	case err = <-served:
	case <-ctx.Done():
		t.Fatal("Serve never returned")
	}
	if err == nil || !strings.Contains(err.Error(), "stopped while leading") || !strings.Contains(err.Error(), "--register-timeout") {
		t.Fatalf("Serve = %v; want the register timeout", err)
	}
	lease, err = c.Client.CoordinationV1().Leases(api.SystemNamespace).Get(ctx, LeaseName+"-edge-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("the Lease is still held by %q after Serve gave up", *h)
	}
}
