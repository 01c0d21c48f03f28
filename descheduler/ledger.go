package descheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// checkpointConfigMap keeps the position in the ledger's event stream, so a restart does not
// replay the whole history. Losing it costs only a replay: handling is level-triggered.
const checkpointConfigMap = "edgemigrate-ledger-checkpoint"

// register records this cluster on the ledger (and refreshes its site, endpoint and capacity).
func (c *Controller) register(ctx context.Context) error {
	capacity, _ := c.capacity()
	start := c.now()
	_, err := c.ledger.RegisterCluster(ctx, chaincode.ClusterRegistration{
		ID: c.id, Location: chaincode.Location{Lat: c.site.Lat, Lon: c.site.Lon},
		CoverageRadiusM: c.o.CoverageRadius, Capacity: capacity, Endpoint: c.o.PublicEndpoint,
	})
	c.metrics.ledgerCall("RegisterCluster", start, err)
	if err != nil {
		return fmt.Errorf("registering cluster %s on the ledger: %w", c.id, err)
	}
	klog.InfoS("Registered on the ledger", "cluster", c.id, "capacity", capacity)
	return nil
}

// capacity sums the Jetson nodes' capacity and free resources. On Jetson, GPU memory is the
// same pool as memory, so both carry unified memory.
func (c *Controller) capacity() (total, free chaincode.Resources) {
	names := c.nodeNames()
	for _, name := range names {
		capa, used, ok := c.usage.Node(name)
		if !ok || !capa.Jetson {
			continue
		}
		total.CPUMilli += capa.CPUMilli
		total.MemoryBytes += capa.Memory
		total.GPUSlots += capa.GPUSlots
		free.CPUMilli += max(0, capa.CPUMilli-used.CPUMilli)
		free.MemoryBytes += max(0, capa.Memory-used.Unified())
		free.GPUSlots += max(0, capa.GPUSlots-used.GPUSlots)
	}
	total.GPUMemoryBytes, free.GPUMemoryBytes = total.MemoryBytes, free.MemoryBytes
	return total, free
}

// nodeNames lists the nodes known to the usage cache, sorted for deterministic bids.
func (c *Controller) nodeNames() []string {
	used := c.usage.Used()
	names := make([]string, 0, len(used))
	for name := range used {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (c *Controller) capacityLoop(ctx context.Context) {
	t := time.NewTicker(c.o.CapacityReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, free := c.capacity()
		start := c.now()
		_, err := c.ledger.ReportCapacity(ctx, c.id, free)
		c.metrics.ledgerCall("ReportCapacity", start, err)
		if err != nil {
			klog.ErrorS(err, "Reporting capacity to the ledger", "cluster", c.id)
		}
	}
}

// watchLedger turns ledger events into work: each event names a migration to reconcile.
func (c *Controller) watchLedger(ctx context.Context) {
	after := c.loadCheckpoint(ctx)
	events, err := c.ledger.Events(ctx, after)
	if err != nil {
		klog.ErrorS(err, "Subscribing to ledger events; relying on resync")
		return
	}
	saved := after
	var last ledger.Checkpoint
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.MigrationID != "" {
				klog.V(4).InfoS("Ledger event", "event", ev.Type, "migration", ev.MigrationID, "state", ev.State, "cluster", ev.ClusterID)
				c.queue.Add(keyLedger + ev.MigrationID)
			}
			last = ev.Checkpoint
		case <-t.C:
			if last != saved {
				if err := c.saveCheckpoint(ctx, last); err != nil {
					klog.ErrorS(err, "Saving the ledger checkpoint")
					continue
				}
				saved = last
			}
		}
	}
}

func (c *Controller) loadCheckpoint(ctx context.Context) ledger.Checkpoint {
	var cp ledger.Checkpoint
	cm, err := c.kube.CoreV1().ConfigMaps(c.o.Namespace).Get(ctx, checkpointConfigMap, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "Reading the ledger checkpoint; replaying the event stream")
		}
		return cp
	}
	if err := json.Unmarshal([]byte(cm.Data[c.id]), &cp); err != nil {
		klog.ErrorS(err, "Decoding the ledger checkpoint; replaying the event stream")
	}
	return cp
}

func (c *Controller) saveCheckpoint(ctx context.Context, cp ledger.Checkpoint) error {
	data, _ := json.Marshal(cp)
	cms := c.kube.CoreV1().ConfigMaps(c.o.Namespace)
	cm, err := cms.Get(ctx, checkpointConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: checkpointConfigMap, Namespace: c.o.Namespace},
			Data: map[string]string{c.id: string(data)}}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[c.id] = string(data)
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// syncLedger handles a migration seen on the ledger: bid on others' proposals, take up the
// destination's part when chosen, and hand the rest to the Migration objects it concerns.
func (c *Controller) syncLedger(ctx context.Context, id string) (time.Duration, error) {
	start := c.now()
	lm, err := c.ledger.GetMigration(ctx, id)
	c.metrics.ledgerCall("GetMigration", start, err)
	if err != nil {
		if chaincode.CodeOf(err) == chaincode.CodeNotFound {
			return 0, nil
		}
		return 0, err
	}
	for _, m := range c.migrationsByIndex(indexLedgerID, id) {
		c.enqueueMigration(m)
	}
	if lm.Source == c.id {
		return 0, nil
	}
	if lm.State == chaincode.StateProposed && !slices.ContainsFunc(lm.Bids, func(b chaincode.Bid) bool { return b.ClusterID == c.id }) {
		return 0, c.bid(ctx, lm)
	}
	chosen := lm.Decision != nil && lm.Decision.Destination == c.id
	if chosen && (lm.State == chaincode.StateDecided || lm.State == chaincode.StateReady) && len(c.migrationsByIndex(indexLedgerID, id)) == 0 {
		return 0, c.createDestinationMigration(ctx, lm)
	}
	return 0, nil
}

// bid evaluates a proposal against this cluster and submits the result.
func (c *Controller) bid(ctx context.Context, lm *chaincode.Migration) error {
	if c.o.DryRun {
		klog.InfoS("Dry run: not bidding", "migration", lm.ID, "source", lm.Source)
		return nil
	}
	d := jetson.Demand{CPUMilli: lm.Metadata.CPUMilli, Memory: lm.Metadata.MemoryBytes, GPUMemory: lm.Metadata.GPUMemoryBytes, GPUSlots: lm.Metadata.GPUSlots}
	replicas := specReplicas(lm.Spec)
	ev := c.evaluate(d, replicas)
	covers := lm.ClientLocation != nil && c.coverage.Covers(pointOf(*lm.ClientLocation))
	in := chaincode.BidInput{ClusterID: c.id, CanHost: ev.canHost, CoversClient: covers, Score: float64(ev.score)}
	start := c.now()
	_, err := c.ledger.SubmitBid(ctx, lm.ID, in)
	c.metrics.ledgerCall("SubmitBid", start, err)
	if err != nil {
		if chaincode.CodeOf(err) == chaincode.CodeConflict {
			return nil // already bid, or decided meanwhile
		}
		return fmt.Errorf("bidding on migration %s: %w", lm.ID, err)
	}
	c.metrics.bids.WithLabelValues(boolLabel(ev.canHost), boolLabel(covers)).Inc()
	klog.InfoS("Bid", "migration", lm.ID, "source", lm.Source, "workload", lm.Workload, "replicas", replicas,
		"demand", d.String(), "canHost", ev.canHost, "coversClient", covers, "score", ev.score, "why", ev.reason)
	return nil
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// evaluation is what this cluster can offer a workload.
type evaluation struct {
	canHost bool
	// score is the first replica's best node's score, 0–100.
	score int64
	// reason explains a refusal.
	reason string
}

// evaluate places replicas copies of d, one at a time, each on the node that scores best
// with what the earlier copies took.
func (c *Controller) evaluate(d jetson.Demand, replicas int32) evaluation {
	type node struct {
		name string
		capa jetson.Capacity
		used jetson.Demand
	}
	var nodes []node
	for _, name := range c.nodeNames() {
		capa, used, ok := c.usage.Node(name)
		if ok && capa.Jetson {
			nodes = append(nodes, node{name, capa, used})
		}
	}
	return placeReplicas(c.policy, len(nodes), func(i int) (jetson.Capacity, *jetson.Demand) { return nodes[i].capa, &nodes[i].used }, d, replicas)
}

// placeReplicas is evaluate's pure core: n nodes given by at (capacity, and use that the
// placement updates).
func placeReplicas(policy jetson.Policy, n int, at func(int) (jetson.Capacity, *jetson.Demand), d jetson.Demand, replicas int32) evaluation {
	if n == 0 {
		return evaluation{reason: "no Jetson nodes"}
	}
	var first int64 = -1
	for r := range max(replicas, 1) {
		best, bestScore := -1, int64(-1)
		var why []string
		for i := range n {
			capa, used := at(i)
			if reasons := jetson.Fit(capa, *used, d); len(reasons) > 0 {
				why = reasons
				continue
			}
			if s := jetson.Score(policy, capa, *used, d); s > bestScore {
				best, bestScore = i, s
			}
		}
		if best < 0 {
			return evaluation{reason: fmt.Sprintf("replica %d of %d fits no node (%s)", r+1, max(replicas, 1), jetson.Reason(why))}
		}
		_, used := at(best)
		*used = used.Add(d)
		if first < 0 {
			first = bestScore
		}
	}
	return evaluation{canHost: true, score: first}
}
