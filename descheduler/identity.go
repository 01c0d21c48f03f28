package descheduler

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// The cluster identity: loaded from files, or generated with a CA of its own.

// Self-signed identity lifetimes: the CA is what peers are given, so it lives long; the
// certificate is renewed once two thirds of its life have passed.
const (
	selfSignedCAValidity   = 10 * 365 * 24 * time.Hour
	selfSignedCertValidity = 365 * 24 * time.Hour
	selfSignedCheckEvery   = 12 * time.Hour
)

// Keys of the identity Secret; caKeyKey only in self-signed mode, to renew from the same CA.
const (
	certKey  = corev1.TLSCertKey
	keyKey   = corev1.TLSPrivateKeyKey
	caKey    = "ca.crt"
	caKeyKey = "ca.key"
)

// loadIdentity loads the cluster identity and keeps it reloaded; nil without one. Its
// CommonName must be the cluster id: peers and the ledger know the cluster by it.
func loadIdentity(ctx context.Context, o *Options) (*mtls.Identity, error) {
	if o.Identity == (mtls.Files{}) {
		return nil, nil
	}
	id, err := mtls.Load(o.Identity)
	if err != nil {
		return nil, err
	}
	if self, _ := id.Self(); self.ClusterID != o.ClusterID {
		return nil, fmt.Errorf("cluster identity %s is for cluster %q, not --cluster-id %q", o.Identity.CertFile, self.ClusterID, o.ClusterID)
	}
	go id.Run(ctx, mtls.ReloadInterval)
	return id, nil
}

// selfSignedIdentity makes sure the Secret api.ClusterIdentitySecret holds an identity
// with a CA of the cluster's own (generated when absent, renewed when due), writes it into
// o.SelfSignedIdentityDir and points o.Identity at it (the CA file stays --tls-ca-file
// when given: the bundle of the peers' CAs). Replicas share the Secret: the first to
// create it wins, the others read it.
type selfSignedIdentity struct {
	kube      kubernetes.Interface
	namespace string
	clusterID string
	mspID     string
	hosts     []string
	dir       string
	now       func() time.Time
}

func newSelfSignedIdentity(kube kubernetes.Interface, o *Options) *selfSignedIdentity {
	hosts := append([]string(nil), o.SelfSignedHosts...)
	if u, err := url.Parse(o.PublicEndpoint); err == nil && u.Hostname() != "" {
		hosts = append([]string{u.Hostname()}, hosts...)
	}
	return &selfSignedIdentity{kube: kube, namespace: o.Namespace, clusterID: o.ClusterID, mspID: o.SelfSignedMSPID,
		hosts: hosts, dir: o.SelfSignedIdentityDir, now: time.Now}
}

// ensure generates or renews the identity in the Secret and writes the files.
func (s *selfSignedIdentity) ensure(ctx context.Context) error {
	secrets := s.kube.CoreV1().Secrets(s.namespace)
	secret, err := secrets.Get(ctx, api.ClusterIdentitySecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		gen, err := mtls.Generate(s.clusterID, s.mspID, selfSignedCAValidity, selfSignedCertValidity, s.hosts...)
		if err != nil {
			return err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: api.ClusterIdentitySecret, Namespace: s.namespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{certKey: gen.CertPEM, keyKey: gen.KeyPEM, caKey: gen.CAPEM, caKeyKey: gen.CAKeyPEM},
		}
		created, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return s.ensure(ctx) // another replica was first
		}
		if err != nil {
			return fmt.Errorf("creating the self-signed cluster identity %s/%s: %w", s.namespace, api.ClusterIdentitySecret, err)
		}
		klog.FromContext(ctx).Info("Generated a self-signed cluster identity; give its ca.crt to the peers and the ledger",
			"secret", klog.KObj(created), "cluster", s.clusterID, "msp", s.mspID)
		secret = created
	case err != nil:
		return fmt.Errorf("reading the cluster identity %s/%s: %w", s.namespace, api.ClusterIdentitySecret, err)
	default:
		if secret, err = s.renewIfDue(ctx, secret); err != nil {
			return err
		}
	}
	return s.write(secret)
}

// renewIfDue issues a new certificate from the Secret's CA once two thirds of the current
// one's life have passed.
func (s *selfSignedIdentity) renewIfDue(ctx context.Context, secret *corev1.Secret) (*corev1.Secret, error) {
	leaf, err := parseLeaf(secret.Data[certKey])
	if err != nil {
		return nil, fmt.Errorf("cluster identity %s/%s: %w", s.namespace, api.ClusterIdentitySecret, err)
	}
	if leaf.Subject.CommonName != s.clusterID {
		return nil, fmt.Errorf("cluster identity %s/%s is for cluster %q, not --cluster-id %q", s.namespace, api.ClusterIdentitySecret, leaf.Subject.CommonName, s.clusterID)
	}
	due := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	if s.now().Before(due) {
		return secret, nil
	}
	certPEM, keyPEM, err := mtls.IssueFrom(secret.Data[caKey], secret.Data[caKeyKey], selfSignedCertValidity, s.clusterID, s.mspID, s.hosts...)
	if err != nil {
		return nil, fmt.Errorf("renewing the cluster identity %s/%s: %w", s.namespace, api.ClusterIdentitySecret, err)
	}
	renewed := secret.DeepCopy()
	renewed.Data[certKey], renewed.Data[keyKey] = certPEM, keyPEM
	// A conflict means another replica renewed first: the next check reads its certificate.
	updated, err := s.kube.CoreV1().Secrets(s.namespace).Update(ctx, renewed, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renewing the cluster identity %s/%s: %w", s.namespace, api.ClusterIdentitySecret, err)
	}
	klog.FromContext(ctx).Info("Renewed the self-signed cluster identity", "secret", klog.KObj(updated), "previousNotAfter", leaf.NotAfter)
	return updated, nil
}

// write puts the Secret's certificate, key and CA into the directory, each file replaced
// whole, unchanged ones left alone.
func (s *selfSignedIdentity) write(secret *corev1.Secret) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", s.dir, err)
	}
	for _, k := range []string{keyKey, certKey, caKey} {
		data := secret.Data[k]
		if len(data) == 0 {
			return fmt.Errorf("cluster identity %s/%s has no %s", s.namespace, api.ClusterIdentitySecret, k)
		}
		path := filepath.Join(s.dir, k)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return fmt.Errorf("replacing %s: %w", path, err)
		}
	}
	return nil
}

// files are the paths ensure writes; caFile, when set, is the peers' bundle instead.
func (s *selfSignedIdentity) files(caFile string) mtls.Files {
	if caFile == "" {
		caFile = filepath.Join(s.dir, caKey)
	}
	return mtls.Files{CertFile: filepath.Join(s.dir, certKey), KeyFile: filepath.Join(s.dir, keyKey), CAFile: caFile}
}

// run renews when due until ctx ends; the Identity reloads the files.
func (s *selfSignedIdentity) run(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := s.ensure(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Checking the self-signed cluster identity; still using the current one")
		}
	}, selfSignedCheckEvery)
}

func parseLeaf(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("tls.crt holds no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
