package webhook

import (
	"bytes"
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestCABundlePublisher(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "edgemigrate-webhook"},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "a.edgemigrate.io"}, {Name: "b.edgemigrate.io"}},
	})
	bundle := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if err := CABundlePublisher(client, "edgemigrate-webhook")(ctx, bundle); err != nil {
		t.Fatal(err)
	}
	got, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "edgemigrate-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range got.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			t.Errorf("webhook %s caBundle %q", w.Name, w.ClientConfig.CABundle)
		}
	}
	// Unchanged: no write.
	before := len(client.Actions())
	if err := CABundlePublisher(client, "edgemigrate-webhook")(ctx, bundle); err != nil {
		t.Fatal(err)
	}
	for _, a := range client.Actions()[before:] {
		if a.GetVerb() == "update" {
			t.Errorf("an unchanged bundle was written again")
		}
	}
	err = CABundlePublisher(client, "missing")(ctx, bundle)
	if err == nil || !strings.Contains(err.Error(), "MutatingWebhookConfiguration missing") {
		t.Errorf("missing configuration: %v", err)
	}
}
