package locator

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestStaticTokens(t *testing.T) {
	s := StaticTokens{"car-a": "token-a", "car-empty": ""}
	tests := []struct {
		id, want string
		ok       bool
	}{
		{"car-a", "token-a", true},
		{"car-empty", "", false},
		{"car-b", "", false},
	}
	for _, tt := range tests {
		if got, ok := s.Token(tt.id); got != tt.want || ok != tt.ok {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
}

func secret(namespace, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestNewSecretTokensNeedsName(t *testing.T) {
	for _, nn := range [][2]string{{"", "tokens"}, {"edge", ""}} {
		if _, err := NewSecretTokens(fake.NewClientset(), nn[0], nn[1]); err == nil || !strings.Contains(err.Error(), "needs a namespace and a name") {
			t.Errorf("NewSecretTokens(%q, %q): %v", nn[0], nn[1], err)
		}
	}
}

// TestSecretTokens follows one Secret through creation, rotation and deletion, and checks
// that only that Secret is asked for and believed.
func TestSecretTokens(t *testing.T) {
	const ns, name = "edgemigrate", "locator-tokens"
	client := fake.NewClientset(
		secret(ns, name, map[string]string{"car-a": "token-a-0123456789abcdef", "car-blank": ""}),
		// The fake clientset ignores field selectors: these must still not become credentials.
		secret(ns, "other", map[string]string{"car-x": "token-x-0123456789abcdef"}),
		secret("elsewhere", name, map[string]string{"car-y": "token-y-0123456789abcdef"}),
	)
	var mu sync.Mutex
	var requests []string
	record := func(a k8stesting.Action, fields string) {
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, a.GetVerb()+" "+a.GetNamespace()+" "+fields)
	}
	client.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		record(a, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		return false, nil, nil
	})
	client.PrependWatchReactor("secrets", func(a k8stesting.Action) (bool, watch.Interface, error) {
		record(a, a.(k8stesting.WatchAction).GetWatchRestrictions().Fields.String())
		return false, nil, nil
	})
	tokens, err := NewSecretTokens(client, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tokens.Token("car-a"); ok || tokens.HasSynced() {
		t.Fatal("tokens known before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tokens.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The locator on top answers from the live tokens.
	f := newFixture(t, Options{Tokens: tokens})
	report := func(id, token string) int {
		return f.put(t, put{id: id, auth: "Bearer " + token, body: body(daegu), remote: "192.0.2.1:1"}).Code
	}

	waitFor(t, "first sync", func() bool { _, ok := tokens.Token("car-a"); return ok && tokens.HasSynced() })
	want := map[string]string{"car-a": "token-a-0123456789abcdef"}
	checkTokens(t, tokens, want, "car-blank", "car-x", "car-y")
	if code := report("car-a", "token-a-0123456789abcdef"); code != http.StatusNoContent {
		t.Errorf("report with the Secret's token: %d", code)
	}

	// Rotation: car-a gets a new token, car-b appears.
	updated := secret(ns, name, map[string]string{"car-a": "token-a2-0123456789abcdef", "car-b": "token-b-0123456789abcdef"})
	if _, err := client.CoreV1().Secrets(ns).Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rotation", func() bool { _, ok := tokens.Token("car-b"); return ok })
	checkTokens(t, tokens, map[string]string{"car-a": "token-a2-0123456789abcdef", "car-b": "token-b-0123456789abcdef"}, "car-blank", "car-x")
	if code := report("car-a", "token-a-0123456789abcdef"); code != http.StatusUnauthorized {
		t.Errorf("report with the rotated-out token: %d, want 401", code)
	}
	if code := report("car-a", "token-a2-0123456789abcdef"); code != http.StatusNoContent {
		t.Errorf("report with the new token: %d", code)
	}

	// Changes to other Secrets in the namespace change nothing.
	if _, err := client.CoreV1().Secrets(ns).Update(ctx, secret(ns, "other", map[string]string{"car-z": "token-z-0123456789abcdef"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Deletion: nobody can authenticate any more.
	if err := client.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deletion", func() bool { _, ok := tokens.Token("car-a"); return !ok })
	checkTokens(t, tokens, nil, "car-a", "car-b", "car-z", "car-x")

	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(requests, "list edgemigrate metadata.name=locator-tokens") ||
		!slices.Contains(requests, "watch edgemigrate metadata.name=locator-tokens") {
		t.Errorf("requests %q, want a list and a watch of the one Secret", requests)
	}
	for _, r := range requests {
		if !strings.HasSuffix(r, " edgemigrate metadata.name=locator-tokens") {
			t.Errorf("request %q is not restricted to the one Secret", r)
		}
	}
}

func checkTokens(t *testing.T, tokens Tokens, want map[string]string, absent ...string) {
	t.Helper()
	for id, w := range want {
		if got, ok := tokens.Token(id); !ok || got != w {
			t.Errorf("Token(%q) = %q, %v; want %q", id, got, ok, w)
		}
	}
	for _, id := range absent {
		if got, ok := tokens.Token(id); ok {
			t.Errorf("Token(%q) = %q, want unknown", id, got)
		}
	}
}

// waitFor waits for an informer to deliver an event; it asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
