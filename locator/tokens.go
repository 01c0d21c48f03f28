package locator

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// MinTokenLength is the shortest client token SecretTokens takes without a warning: the
// failed-login limits never refuse a valid token, so guessing must be hopeless on its own
// (a token of `openssl rand -base64 24` or Go's rand.Text() is well over it).
const MinTokenLength = 16

// Tokens gives the bearer token a client must present to report its location.
type Tokens interface {
	// Token returns the client's token; false when the client is unknown.
	Token(clientID string) (string, bool)
}

// StaticTokens maps client ids to tokens, for tests, demos and flags.
type StaticTokens map[string]string

// Token implements Tokens. An empty token counts as unknown: it must never authenticate.
func (s StaticTokens) Token(clientID string) (string, bool) {
	t, ok := s[clientID]
	return t, ok && t != ""
}

// SecretTokens reads client tokens from one Secret (data key = client id, value = token)
// and follows its changes. It watches only that Secret, by namespace and field selector,
// so its RBAC can be limited to get, list and watch on that one Secret's namespace
// (resourceNames cannot restrict list and watch, but the selector keeps the cache to one
// object).
type SecretTokens struct {
	namespace, name string
	informer        cache.SharedIndexInformer
	factory         informers.SharedInformerFactory

	// tokens is swapped whole on each change, so Token never takes a lock.
	tokens atomic.Pointer[map[string]string]

	startOnce sync.Once
	// logger is Run's, for the informer's handlers.
	logger klog.Logger
}

// NewSecretTokens returns tokens read from the Secret namespace/name. Call Run to start
// following it; until it has synced, every client is unknown.
func NewSecretTokens(client kubernetes.Interface, namespace, name string) (*SecretTokens, error) {
	if namespace == "" || name == "" {
		return nil, fmt.Errorf("token secret needs a namespace and a name, got %q/%q", namespace, name)
	}
	s := &SecretTokens{namespace: namespace, name: name, logger: klog.Background()}
	empty := map[string]string{}
	s.tokens.Store(&empty)
	s.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	s.informer = s.factory.Core().V1().Secrets().Informer()
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.update(obj) },
		UpdateFunc: func(_, obj any) { s.update(obj) },
		DeleteFunc: func(obj any) { s.remove(obj) },
	}); err != nil {
		return nil, fmt.Errorf("watching token secret %s/%s: %w", namespace, name, err)
	}
	return s, nil
}

// Run follows the Secret until ctx ends.
func (s *SecretTokens) Run(ctx context.Context) {
	s.startOnce.Do(func() {
		s.logger = klog.FromContext(ctx)
		s.factory.Start(ctx.Done())
	})
	<-ctx.Done()
	s.factory.Shutdown()
}

// HasSynced reports whether the Secret has been read once (or found missing).
func (s *SecretTokens) HasSynced() bool { return s.informer.HasSynced() }

// Token implements Tokens.
func (s *SecretTokens) Token(clientID string) (string, bool) {
	t, ok := (*s.tokens.Load())[clientID]
	return t, ok && t != ""
}

// ours reports whether obj is the token Secret: a server that ignored the field selector
// must not turn other Secrets into credentials.
func (s *SecretTokens) ours(obj any) (*corev1.Secret, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	secret, ok := obj.(*corev1.Secret)
	return secret, ok && secret.Namespace == s.namespace && secret.Name == s.name
}

func (s *SecretTokens) update(obj any) {
	secret, ok := s.ours(obj)
	if !ok {
		return
	}
	tokens := make(map[string]string, len(secret.Data))
	for id, token := range secret.Data {
		if len(token) == 0 {
			continue
		}
		if len(token) < MinTokenLength {
			s.logger.Info("Warning: client token too short to resist guessing; replace it with a random one",
				"secret", klog.KObj(secret), "client", id, "length", len(token), "minimum", MinTokenLength)
		}
		tokens[id] = string(token)
	}
	s.tokens.Store(&tokens)
	s.logger.V(2).Info("Loaded client tokens", "secret", klog.KObj(secret), "clients", len(tokens))
}

func (s *SecretTokens) remove(obj any) {
	secret, ok := s.ours(obj)
	if !ok {
		return
	}
	empty := map[string]string{}
	s.tokens.Store(&empty)
	s.logger.Info("Client token secret deleted: no client can report its location", "secret", klog.KObj(secret))
}
