package descheduler

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// The self-signed identity: generated once into its Secret, shared by replicas, renewed from
// the same CA when due, refused when the Secret names another cluster.
func TestSelfSignedIdentity(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	o := validOptions()
	o.Identity, o.SelfSignedIdentity, o.SelfSignedMSPID = mtls.Files{}, true, "EdgeAMSP"
	o.PublicEndpoint, o.SelfSignedHosts = "https://10.0.0.5:8090", []string{"edge-a.example.com"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "needs --self-signed-identity-dir") {
		t.Fatalf("self-signed options without a directory: %v, want refused", err)
	}
	replica := func() *selfSignedIdentity {
		o := *o
		o.SelfSignedIdentityDir = t.TempDir()
		return newSelfSignedIdentity(kube, &o)
	}
	first := replica()
	if err := first.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := mtls.Load(first.files(""))
	if err != nil {
		t.Fatal(err)
	}
	if self, _ := id.Self(); self != (mtls.Peer{ClusterID: "edge-a", MSPID: "EdgeAMSP"}) {
		t.Errorf("identity %+v, want edge-a in EdgeAMSP", self)
	}
	leaf := readLeaf(t, first.files("").CertFile)
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "10.0.0.5" || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "edge-a.example.com" {
		t.Errorf("SANs %v %v, want the public endpoint's 10.0.0.5 and edge-a.example.com", leaf.IPAddresses, leaf.DNSNames)
	}

	// A second replica reads the same identity.
	second := replica()
	if err := second.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := readFile(t, first.files("").CertFile), readFile(t, second.files("").CertFile); a != b {
		t.Error("the second replica made an identity of its own")
	}

	// Due: a new certificate from the same CA.
	second.now = func() time.Time { return leaf.NotAfter.Add(-time.Hour) }
	if err := second.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed := readLeaf(t, second.files("").CertFile)
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("not renewed when due")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(readFile(t, first.files("").CAFile)))
	if _, err := renewed.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the renewed certificate does not verify with the CA peers were given: %v", err)
	}
	secret, err := kube.CoreV1().Secrets(o.Namespace).Get(ctx, api.ClusterIdentitySecret, metav1.GetOptions{})
	if err != nil || string(secret.Data["tls.crt"]) != readFile(t, second.files("").CertFile) {
		t.Errorf("the Secret does not hold the renewed certificate (%v)", err)
	}
	if got := second.files("/etc/trust/ca.crt").CAFile; got != "/etc/trust/ca.crt" {
		t.Errorf("with a trust bundle the CA file is %s", got)
	}

	// The Secret of another cluster is refused.
	other := replica()
	other.clusterID = "edge-b"
	if err := other.ensure(ctx); err == nil || !strings.Contains(err.Error(), `is for cluster "edge-a", not --cluster-id "edge-b"`) {
		t.Errorf("another cluster's Secret: %v, want refused", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readLeaf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	leaf, err := parseLeaf([]byte(readFile(t, filepath.Clean(path))))
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
