package descheduler

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// Reasons of the DestinationVerified condition.
const (
	reasonVerifying = "Verifying"
	reasonVerified  = "Verified"
	// reasonUnverifiable: the workload serves no client, so no request can reach it through
	// the destination's gateway; the ledger's word is taken.
	reasonUnverifiable = "NoClient"
	reasonVerifyFailed = "VerificationFailed"
)

const (
	// verifyRequeue paces the retries of the request through the destination's gateway.
	verifyRequeue = time.Second
	// verifyRequestTimeout bounds one request.
	verifyRequestTimeout = 5 * time.Second
)

// verifyDestination holds the removal of the source's copy until a real request for the
// client's service through the destination's public endpoint is answered 2xx by a pod of
// the destination (api.HeaderCluster): the ledger's Ready is only the destination's word.
// It retries until --verify-timeout after Ready, then aborts, keeping the copy that never
// left. It reports whether the copy may go, else when to look again.
//
// A workload without a client id, or whose pods declare no service port, cannot be reached
// through a gateway (the gateway routes by client, to the service port); its source keeps
// the ledger's word, with a Warning Event, rather than never completing: such a workload
// serves no car through the gateway here either.
func (c *Controller) verifyDestination(ctx context.Context, logger klog.Logger, m *v1alpha1.Migration) (bool, time.Duration, error) {
	if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionDestinationVerified); cond != nil && cond.Reason != reasonVerifying {
		return true, 0, nil
	}
	if meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionSourceRemoved) != nil {
		return true, 0, nil // removal started before this condition existed
	}
	now := c.clock.Now()
	set := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&m.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionDestinationVerified, Status: status,
			Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(now)})
	}
	// A dead destination serves no one: keep the copy that never left, now (the contract
	// lets the source abort in Ready for that).
	if since, dead := c.deadCluster(m.Status.Destination); dead {
		msg := fmt.Sprintf("%s reported Ready but is dead on the ledger (since %s); the service stays here", m.Status.Destination, since)
		logger.Info("Destination dead before verification; aborting", "destination", m.Status.Destination)
		set(metav1.ConditionFalse, reasonVerifyFailed, msg)
		c.recorder.Event(m, corev1.EventTypeWarning, api.EventDestinationDead, msg)
		return false, 0, c.abortWith(ctx, m, api.EventDestinationDead, msg)
	}
	clients := c.clientsOf(m)
	tmpl, probe := c.servingPod(m)
	why := ""
	switch _, err := servicePort(tmpl); {
	case len(clients) == 0:
		why = "serves no client"
	case err != nil:
		why = "has no service port for the gateway (" + err.Error() + ")"
	}
	if why != "" {
		msg := fmt.Sprintf("%s %s %s: no request can verify %s through its gateway; removing the local copy on the ledger's word", m.Spec.Workload.Kind, m.Spec.Workload.Name, why, m.Status.Destination)
		logger.Info("Destination not verifiable", "destination", m.Status.Destination)
		c.recorder.Event(m, corev1.EventTypeWarning, "DestinationUnverified", msg)
		set(metav1.ConditionUnknown, reasonUnverifiable, msg)
		return true, 0, c.writeStatus(ctx, m)
	}
	err := c.requestService(ctx, m, clients[0], probe)
	if err == nil {
		msg := fmt.Sprintf("a request for client %s through %s's gateway was answered by %s", clients[0], m.Status.Destination, m.Status.Destination)
		logger.Info("Destination verified", "destination", m.Status.Destination, "client", clients[0])
		c.recorder.Event(m, corev1.EventTypeNormal, "DestinationVerified", msg)
		set(metav1.ConditionTrue, reasonVerified, msg)
		return true, 0, c.writeStatus(ctx, m)
	}
	since := now
	if m.Status.ReadyTime != nil {
		since = m.Status.ReadyTime.Time
	}
	if now.Sub(since) >= c.cfg.VerifyTimeout {
		msg := fmt.Sprintf("%s reported Ready but does not serve client %s through its gateway after --verify-timeout %s: %v; the service stays here", m.Status.Destination, clients[0], c.cfg.VerifyTimeout, err)
		logger.Info("Destination failed verification; aborting", "destination", m.Status.Destination, "err", err)
		set(metav1.ConditionFalse, reasonVerifyFailed, msg)
		return false, 0, c.abortWith(ctx, m, reasonVerifyFailed, msg)
	}
	if cond := meta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionDestinationVerified); cond == nil {
		logger.V(2).Info("Verifying the destination", "destination", m.Status.Destination, "err", err)
	}
	set(metav1.ConditionFalse, reasonVerifying, "waiting for the destination to serve the client: "+err.Error())
	return false, verifyRequeue, c.writeStatus(ctx, m)
}

// requestService makes one GET for clientID's service through the destination's public
// endpoint, at the path of the copy's readiness probe, with the client's token; it does
// not follow redirects (the gateway redirects a client it does not serve).
func (c *Controller) requestService(ctx context.Context, m *v1alpha1.Migration, clientID, probePath string) error {
	if m.Status.DestinationEndpoint == "" {
		return fmt.Errorf("%s has no public endpoint on the ledger", m.Status.Destination)
	}
	// The request carries the car's token: never in clear beyond loopback.
	if err := mtls.RequireTLS(m.Status.DestinationEndpoint); err != nil {
		return fmt.Errorf("destination endpoint: %w", err)
	}
	base, err := url.Parse(m.Status.DestinationEndpoint)
	if err != nil {
		return fmt.Errorf("destination endpoint %q: %w", m.Status.DestinationEndpoint, err)
	}
	target := strings.TrimSuffix(base.String(), "/") + "/v1/clients/" + url.PathEscape(clientID) + "/service" + probePath
	ctx, cancel := context.WithTimeout(ctx, verifyRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("building the request to %s: %w", target, err)
	}
	if c.clientTokens != nil {
		if token, ok := c.clientTokens.Token(clientID); ok {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	}
	hc := *c.peerHTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s: %s", target, resp.Status, strings.TrimSpace(chaincode.Truncate(string(body), 256)))
	}
	if got := resp.Header.Get(api.HeaderCluster); got != m.Status.Destination {
		return fmt.Errorf("GET %s: answered by cluster %q, not %s", target, got, m.Status.Destination)
	}
	return nil
}

// servingPod is a pod as the workload's copies are (the Pod, or the Deployment's template;
// the destination's copy is made from the same) and the readiness probe's HTTP path of its
// first container that has one, or "/".
func (c *Controller) servingPod(m *v1alpha1.Migration) (*corev1.Pod, string) {
	p := &corev1.Pod{}
	switch m.Spec.Workload.Kind {
	case v1alpha1.KindDeployment:
		if d, err := c.deployments.Deployments(m.Namespace).Get(m.Spec.Workload.Name); err == nil {
			p = &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
			p.Namespace, p.Name = d.Namespace, d.Name
		}
	case v1alpha1.KindPod:
		if pod, err := c.pods.Pods(m.Namespace).Get(m.Spec.Workload.Name); err == nil {
			p = pod
		}
	}
	for _, ctr := range p.Spec.Containers {
		if probe := ctr.ReadinessProbe; probe != nil && probe.HTTPGet != nil && strings.HasPrefix(probe.HTTPGet.Path, "/") {
			return p, probe.HTTPGet.Path
		}
	}
	return p, "/"
}
