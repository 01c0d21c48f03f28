package webhook

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

var shared clustertest.Shared

func TestMain(m *testing.M) { clustertest.Main(m, 1, localcluster.Options{Name: "webhook"}, &shared) }

const (
	e2eCluster     = "edge-e2e"
	e2eWebhookName = "pods.edgemigrate.io"
)

// TestE2EWebhook: the real kube-apiserver calls the webhook over TLS through the
// MutatingWebhookConfiguration of manifests/webhook.yaml (pointed at https://127.0.0.1:PORT).
// Steps share the webhook process, so they run in order.
func TestE2EWebhook(t *testing.T) {
	c := shared.Require(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// A Jetson node whose status.images knows the model image's size.
	if err := c.AddNodes(ctx, localcluster.JetsonNode("xavier-webhook", localcluster.AGXXavier, localcluster.NodeOptions{})); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	firstSerial := ca.issue(t, certFile, keyFile)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	opts := NewOptions()
	opts.Address = addr
	opts.CertFile, opts.KeyFile = certFile, keyFile
	opts.CertReloadInterval = 100 * time.Millisecond
	opts.ClusterID = e2eCluster
	opts.WebhookConfigName = "edgemigrate-webhook-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	wh := startWebhook(ctx, t, opts, c, ln)
	parent := t // webhooks started in a step outlive it

	cfg := manifestWebhookConfig(t)
	cfg.Name = opts.WebhookConfigName
	cfg.Webhooks[0].ClientConfig.Service = nil
	cfg.Webhooks[0].ClientConfig.URL = ptr.To("https://" + addr + Path)
	cfg.Webhooks[0].ClientConfig.CABundle = ca.pem
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	})

	enabled := clustertest.Namespace(t, c, map[string]string{api.LabelNamespaceEnabled: "true"})
	plain := clustertest.Namespace(t, c, nil)
	waitPatched(ctx, t, c, enabled)

	t.Run("pods in an opted-in namespace carry the patches", func(t *testing.T) {
		p := e2ePod("model", enabled, map[string]string{api.AnnotationGPUMemory: "4Gi"})
		got, err := c.Client.CoreV1().Pods(enabled).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantPatched(t, got, map[string]string{
			api.AnnotationSourceCluster: e2eCluster,
			api.AnnotationWorkload:      "Pod/" + enabled + "/model",
			api.AnnotationDemand:        "cpu=2,memory=4Gi,gpu=1,gpu-memory=4Gi",
			api.AnnotationImageSize:     strconv.FormatInt(localcluster.DefaultImages[0].SizeBytes, 10),
			api.AnnotationGPUMemory:     "4Gi",
		})
	})

	t.Run("Deployment pods name the Deployment", func(t *testing.T) {
		labels := map[string]string{"app": "inference"}
		deploy := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "inference", Namespace: enabled},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: e2ePod("", "", nil).Spec},
			},
		}
		if _, err := c.Client.AppsV1().Deployments(enabled).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var pods []corev1.Pod
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			list, err := c.Client.CoreV1().Pods(enabled).List(ctx, metav1.ListOptions{LabelSelector: "app=inference"})
			if err != nil {
				return false, nil
			}
			pods = list.Items
			return len(pods) == 2, nil
		})
		if err != nil {
			t.Fatalf("waiting for the Deployment's 2 pods: %v (have %d)", err, len(pods))
		}
		for i := range pods {
			wantPatched(t, &pods[i], map[string]string{
				api.AnnotationSourceCluster: e2eCluster,
				api.AnnotationWorkload:      "Deployment/" + enabled + "/inference",
				api.AnnotationDemand:        "cpu=2,memory=4Gi,gpu=1,gpu-memory=0",
				api.AnnotationImageSize:     strconv.FormatInt(localcluster.DefaultImages[0].SizeBytes, 10),
			})
		}
	})

	t.Run("pods elsewhere are untouched", func(t *testing.T) {
		optIn := map[string]string{api.AnnotationMigrate: "true"}
		cases := []*corev1.Pod{
			e2ePod("not-opted-in", plain, nil),
			e2ePod("opted-out", enabled, map[string]string{api.AnnotationMigrate: "false"}),
			e2ePod("system", metav1.NamespaceSystem, optIn),
		}
		labelled := e2ePod("opted-out-by-label", enabled, nil)
		labelled.Labels = map[string]string{api.LabelMigrate: "false"}
		cases = append(cases, labelled)
		for _, p := range cases {
			got, err := c.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating %s/%s: %v", p.Namespace, p.Name, err)
			}
			if p.Namespace == metav1.NamespaceSystem {
				t.Cleanup(func() {
					_ = c.Client.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{})
				})
			}
			if got.Spec.SchedulerName != corev1.DefaultSchedulerName || !sameAnnotations(got.Annotations, p.Annotations) {
				t.Errorf("%s/%s was mutated: scheduler %q annotations %v", p.Namespace, p.Name, got.Spec.SchedulerName, got.Annotations)
			}
		}
		// Opting in by annotation works from a namespace that is not opted in.
		got, err := c.Client.CoreV1().Pods(plain).Create(ctx, e2ePod("opted-in", plain, optIn), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Annotations[api.AnnotationWorkload] != "Pod/"+plain+"/opted-in" {
			t.Errorf("pod opted in by annotation not patched: %v", got.Annotations)
		}
	})

	t.Run("malformed gpu-memory is denied", func(t *testing.T) {
		_, err := c.Client.CoreV1().Pods(enabled).Create(ctx, e2ePod("bad", enabled, map[string]string{api.AnnotationGPUMemory: "4 GB"}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), api.AnnotationGPUMemory) || !strings.Contains(err.Error(), `"4 GB"`) {
			t.Fatalf("error %v, want a denial naming %s and its value", err, api.AnnotationGPUMemory)
		}
	})

	t.Run("certificate rotation keeps admissions working", func(t *testing.T) {
		secondSerial := ca.issue(t, certFile, keyFile)
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			serial, err := servedSerial(addr, ca.pool())
			return err == nil && serial == secondSerial, nil
		})
		if err != nil {
			t.Fatalf("the webhook did not start serving the rotated certificate (first %s, second %s): %v", firstSerial, secondSerial, err)
		}
		for i := range 3 {
			name := fmt.Sprintf("after-rotation-%d", i)
			got, err := c.Client.CoreV1().Pods(enabled).Create(ctx, e2ePod(name, enabled, nil), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Annotations[api.AnnotationWorkload] != "Pod/"+enabled+"/"+name {
				t.Errorf("pod %s created after rotation not patched: %v", name, got.Annotations)
			}
		}
	})

	t.Run("self-signed mode writes its CA into the configuration", func(t *testing.T) {
		wh.stop(t)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		ss := *opts
		ss.CertFile, ss.KeyFile = "", ""
		ss.SelfSigned = true
		ss.SelfSignedHosts = []string{"127.0.0.1"}
		wh = startWebhook(ctx, parent, &ss, c, ln)
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, cfg.Name, metav1.GetOptions{})
			return err == nil && !bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, ca.pem), nil
		})
		if err != nil {
			t.Fatalf("caBundle not replaced by the self-signed CA: %v", err)
		}
		waitPatched(ctx, t, c, enabled)
	})

	t.Run("a stopped webhook does not block pod creation", func(t *testing.T) {
		wh.stop(t)
		before := failOpenCount(ctx, t, c)
		got, err := c.Client.CoreV1().Pods(enabled).Create(ctx, e2ePod("while-down", enabled, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("pod creation failed with the webhook down: %v", err)
		}
		if _, ok := got.Annotations[api.AnnotationSourceCluster]; ok {
			t.Errorf("pod patched although the webhook was down: %v", got.Annotations)
		}
		after := failOpenCount(ctx, t, c)
		t.Logf("apiserver_admission_webhook_fail_open_count{name=%q}: %v before, %v after", e2eWebhookName, before, after)
		if after <= before {
			t.Errorf("apiserver_admission_webhook_fail_open_count{name=%q} went from %v to %v, want it to rise", e2eWebhookName, before, after)
		}
	})
}

// e2ePod is a GPU inference pod on the node image the Jetson nodes report.
func e2ePod(name, ns string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "model",
			Image: localcluster.DefaultImages[0].Names[0],
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
				Limits:   corev1.ResourceList{api.ResourceGPU: resource.MustParse("1")},
			},
		}}},
	}
}

func wantPatched(t *testing.T, p *corev1.Pod, want map[string]string) {
	t.Helper()
	if p.Spec.SchedulerName != api.SchedulerName {
		t.Errorf("pod %s: schedulerName %q, want %q", p.Name, p.Spec.SchedulerName, api.SchedulerName)
	}
	if !sameAnnotations(p.Annotations, want) {
		t.Errorf("pod %s annotations:\n got %v\nwant %v", p.Name, p.Annotations, want)
	}
}

func sameAnnotations(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// waitPatched waits until the API server calls the webhook: its configuration reaches the
// API server's admission plugin a moment after it is created. Dry-run pods persist nothing.
func waitPatched(ctx context.Context, t *testing.T, c *localcluster.Cluster, ns string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := c.Client.CoreV1().Pods(ns).Create(ctx, e2ePod("probe", ns, nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = err
			return false, nil
		}
		return got.Annotations[api.AnnotationSourceCluster] == e2eCluster, nil
	})
	if err != nil {
		t.Fatalf("the API server never applied the webhook's patch: %v (last error: %v)", err, last)
	}
}

type runningWebhook struct {
	cancel context.CancelFunc
	done   chan error
}

func startWebhook(ctx context.Context, t *testing.T, opts *Options, c *localcluster.Cluster, ln net.Listener) *runningWebhook {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &runningWebhook{cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- Serve(ctx, opts, c.Client, ln) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop stops the webhook and reports how it ended; it is safe to call twice.
func (w *runningWebhook) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	if err, ok := <-w.done; ok {
		close(w.done)
		if err != nil {
			t.Errorf("webhook ended with: %v", err)
		}
	}
}

// failOpenCount reads the API server's fail-open counter for the webhook.
func failOpenCount(ctx context.Context, t *testing.T, c *localcluster.Cluster) float64 {
	t.Helper()
	raw, err := c.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the API server's metrics: %v", err)
	}
	var total float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_admission_webhook_fail_open_count{") || !strings.Contains(line, `name="`+e2eWebhookName+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
	}
	return total
}

// servedSerial returns the serial of the certificate served at addr, verified with roots.
func servedSerial(addr string, roots *x509.CertPool) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// testCA issues serving certificates for 127.0.0.1, as cert-manager would into a Secret.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e-webhook-ca"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a new key and certificate (key first, each by rename, as a Secret volume
// update swaps files) and returns the certificate's serial.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
	} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			t.Fatal(errors.Join(err))
		}
	}
	return serial.String()
}
