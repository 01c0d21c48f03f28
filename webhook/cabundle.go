package webhook

import (
	"bytes"
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// CABundlePublisher returns a function writing a CA bundle into every webhook of the
// MutatingWebhookConfiguration named name: the self-signed mode's way of making the API
// server trust its certificates.
func CABundlePublisher(client kubernetes.Interface, name string) func(context.Context, []byte) error {
	return func(ctx context.Context, bundle []byte) error {
		changed := false
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cfg, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			changed = false
			for i := range cfg.Webhooks {
				if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
					cfg.Webhooks[i].ClientConfig.CABundle = bundle
					changed = true
				}
			}
			if !changed {
				return nil
			}
			_, err = client.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, cfg, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("writing the CA bundle into MutatingWebhookConfiguration %s: %w", name, err)
		}
		if changed {
			klog.InfoS("CA bundle written", "mutatingWebhookConfiguration", name)
		}
		return nil
	}
}
