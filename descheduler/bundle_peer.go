package descheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// bundleRoute is api.BundlePath in gin's syntax.
var bundleRoute = strings.Replace(api.BundlePath, "{id}", ":id", 1)

// RegisterBundles serves the bundles of this cluster's migrations on the public endpoint.
func (c *Controller) RegisterBundles(r gin.IRoutes) { r.GET(bundleRoute, c.serveBundle) }

// serveBundle answers a destination's fetch of a migration's bundle: only the peer whose
// certificate names the destination the ledger chose, under that cluster's registered MSP,
// gets it.
func (c *Controller) serveBundle(g *gin.Context) {
	ctx := g.Request.Context()
	id := g.Param("id")
	logger := klog.FromContext(ctx).WithValues("ledgerID", id, "remote", g.Request.RemoteAddr)
	status, why := c.authorizeBundle(ctx, g.Request, id)
	if status != http.StatusOK {
		logger.Info("Refused a bundle request", "status", status, "reason", why)
		g.String(status, why+"\n")
		return
	}
	data, err := c.storedBundle(ctx, id)
	if err != nil {
		logger.Error(err, "Reading a stored bundle")
		g.String(http.StatusNotFound, "migration %s has no bundle here\n", id)
		return
	}
	logger.V(2).Info("Served a bundle", "bytes", len(data))
	g.Data(http.StatusOK, "application/json", data)
}

// authorizeBundle says whether the request may have migration id's bundle, and if not why.
func (c *Controller) authorizeBundle(ctx context.Context, r *http.Request, id string) (int, string) {
	peer, verified := mtls.PeerOfRequest(r)
	if !verified && !c.plainPeers(r) {
		return http.StatusForbidden, "a bundle is served only over mutual TLS, to the destination the ledger chose"
	}
	lm, err := c.ledger.GetMigration(ctx, id)
	switch {
	case chaincode.CodeOf(err) == chaincode.CodeNotFound:
		return http.StatusNotFound, "no migration " + id + " on the ledger"
	case err != nil:
		return http.StatusServiceUnavailable, "reading the ledger: " + err.Error()
	case lm.Source != c.cfg.ClusterID:
		return http.StatusNotFound, "migration " + id + " is not from cluster " + c.cfg.ClusterID
	case lm.Decision == nil || (lm.State != chaincode.StateDecided && lm.State != chaincode.StateReady):
		return http.StatusForbidden, fmt.Sprintf("migration %s is %s: no destination to serve", id, lm.State)
	case !verified:
		return http.StatusOK, "" // development: loopback, no identities
	case peer.ClusterID != lm.Decision.Destination:
		return http.StatusForbidden, fmt.Sprintf("cluster %s is not the destination the ledger chose for %s", peer.ClusterID, id)
	}
	cl, err := c.ledger.GetCluster(ctx, lm.Decision.Destination)
	if err != nil {
		return http.StatusServiceUnavailable, "reading the destination's registration: " + err.Error()
	}
	if cl.MSPID != peer.MSPID {
		return http.StatusForbidden, fmt.Sprintf("the certificate's organization %s is not the MSP %s that cluster %s registered with", peer.MSPID, cl.MSPID, cl.ID)
	}
	return http.StatusOK, ""
}

// plainPeers: without a cluster identity (development on one machine) a loopback caller
// gets bundles over plain HTTP; nobody can be told apart there.
func (c *Controller) plainPeers(r *http.Request) bool {
	if c.identity != nil || r.TLS != nil {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	return err == nil && mtls.IsLoopback(host)
}

// errFetch is a failed fetch that may succeed later (the source is restarting, its ledger
// view lags): retried until --destination-ready-timeout.
type errFetch struct{ err error }

func (e errFetch) Error() string { return e.err.Error() }
func (e errFetch) Unwrap() error { return e.err }

// fetchBundle fetches migration lm's bundle from its source's public endpoint and checks
// it against the ledger (verifyBundle).
func (c *Controller) fetchBundle(ctx context.Context, lm *chaincode.Migration) (*serviceBundle, error) {
	ep, ok := c.endpoints.Load(lm.Source)
	if !ok {
		return nil, errFetch{fmt.Errorf("no public endpoint of source %s known yet", lm.Source)}
	}
	u := strings.TrimSuffix(ep.(string), "/") + strings.Replace(api.BundlePath, "{id}", url.PathEscape(lm.ID), 1)
	if err := mtls.RequireTLS(u); err != nil {
		return nil, errRefused{"fetching the bundle: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errRefused{"fetching the bundle: " + err.Error()}
	}
	resp, err := c.peerHTTP.Do(req)
	if err != nil {
		return nil, errFetch{fmt.Errorf("fetching the bundle from %s: %w", lm.Source, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return nil, errFetch{fmt.Errorf("reading the bundle from %s: %w", lm.Source, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errFetch{fmt.Errorf("source %s answered the bundle request with %s: %s", lm.Source, resp.Status,
			chaincode.Truncate(strings.TrimSpace(string(data)), 300))}
	}
	return verifyBundle(lm, data)
}

// verifyBundle checks a bundle's bytes against what the ledger recorded of migration lm
// and bid on: the digest, the workload, and demand, images and requirements no larger
// than declared. Every refusal is an errRefused saying why.
func verifyBundle(lm *chaincode.Migration, data []byte) (*serviceBundle, error) {
	refuse := func(format string, a ...any) error { return errRefused{fmt.Sprintf(format, a...)} }
	if len(data) > maxBundleBytes {
		return nil, refuse("the bundle is more than %d bytes", maxBundleBytes)
	}
	if got := digestOf(data); got != lm.BundleDigest {
		return nil, refuse("the bundle's digest %s is not the %s the ledger recorded", got, lm.BundleDigest)
	}
	b, err := decodeBundle(data)
	if err != nil {
		return nil, errRefused{err.Error()}
	}
	kind, ns, name, _ := splitWorkload(lm.Workload)
	wm := b.Workload.meta()
	if b.Workload.Kind != kind || wm.Name != name || (wm.Namespace != "" && wm.Namespace != ns) {
		return nil, refuse("the bundle holds %s %s/%s, not the proposed %s", b.Workload.Kind, wm.Namespace, wm.Name, lm.Workload)
	}
	if o := lm.Metadata.Origin; o != "" && b.Origin != o {
		return nil, refuse("the bundle's origin %s is not the proposed %s", b.Origin, o)
	}
	d, replicas, err := demandOf(b)
	if err != nil {
		return nil, errRefused{err.Error()}
	}
	declared := jetson.Demand{CPUMilli: lm.Metadata.CPUMilli, Memory: lm.Metadata.MemoryBytes, GPUSlots: lm.Metadata.GPUSlots, GPUMemory: lm.Metadata.GPUMemoryBytes}
	if replicas > max(lm.Metadata.Replicas, 1) {
		return nil, refuse("the bundle asks for %d replicas, the proposal declared %d", replicas, max(lm.Metadata.Replicas, 1))
	}
	if h := b.HorizontalPodAutoscaler; h != nil && h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > max(lm.Metadata.Replicas, 1) {
		return nil, refuse("the bundle's autoscaler keeps at least %d replicas, the proposal declared %d", *h.Spec.MinReplicas, max(lm.Metadata.Replicas, 1))
	}
	if d.CPUMilli > declared.CPUMilli || d.Memory > declared.Memory || d.GPUSlots > declared.GPUSlots || d.GPUMemory > declared.GPUMemory {
		return nil, refuse("one replica of the bundle demands %s, more than the declared %s", d, declared)
	}
	pod := b.Workload.template()
	declaredImages := []string{lm.Metadata.Image}
	for _, im := range lm.Metadata.Images {
		declaredImages = append(declaredImages, im.Name)
	}
	for _, im := range imagesOf(&pod.Spec) {
		if !slices.Contains(declaredImages, im) {
			return nil, refuse("the bundle runs image %s, which the proposal did not declare", im)
		}
	}
	need, declaredReq := requirementsOf(&pod.Spec), lm.Metadata.Requires
	for _, s := range need.Secrets {
		if !slices.Contains(declaredReq.Secrets, s) {
			return nil, refuse("the bundle needs Secret %s, which the proposal did not declare", s)
		}
	}
	for _, r := range []struct{ what, need, declared string }{
		{"ServiceAccount", need.ServiceAccount, declaredReq.ServiceAccount},
		{"PriorityClass", need.PriorityClass, declaredReq.PriorityClass},
		{"RuntimeClass", need.RuntimeClass, declaredReq.RuntimeClass},
	} {
		if r.need != r.declared {
			return nil, refuse("the bundle needs %s %q, the proposal declared %q", r.what, r.need, r.declared)
		}
	}
	return b, nil
}

// isRetryable tells a fetch worth retrying from a refusal.
func isRetryable(err error) bool {
	var f errFetch
	return errors.As(err, &f)
}
