package descheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/jetson"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// checkpointConfigMap keeps the position in the ledger's event stream, so a restart does not
// replay the whole history. Losing it costs only a replay: handling is level-triggered.
const checkpointConfigMap = "edgemigrate-ledger-checkpoint"

// admissionRetry paces registration attempts while the cluster's id is not admitted yet.
const admissionRetry = 10 * time.Second

// registerCallTimeout bounds one registration attempt.
const registerCallTimeout = 30 * time.Second

// registerBackoff paces registration attempts while the ledger cannot be reached.
var registerBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}

// register records this cluster on the ledger (and refreshes its site, endpoint and
// capacity). Until its id is admitted for its MSP it waits, saying so, so that an operator
// can install first and admit after. A ledger it cannot reach is retried with backoff for
// at most --register-timeout, then it gives up (the caller gives up its Lease, so a
// standby or a restart tries); any other refusal is an error.
func (c *Controller) register(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	backoff := registerBackoff
	var unreachableSince time.Time
	for waited := false; ; {
		capacity, _ := c.capacity()
		start := c.clock.Now()
		// One attempt may not hang past the bound: a ledger that accepts connections and
		// never answers is as unreachable as one that refuses them.
		callCtx, cancel := context.WithTimeout(ctx, registerCallTimeout)
		_, err := c.ledger.RegisterCluster(callCtx, chaincode.ClusterRegistration{
			ID: c.cfg.ClusterID, Location: chaincode.Location{Lat: c.cfg.Coverage.Center.Lat, Lon: c.cfg.Coverage.Center.Lon},
			CoverageRadiusM: c.cfg.Coverage.RadiusM, Capacity: capacity, Endpoint: c.cfg.PublicEndpoint,
		})
		cancel()
		c.metrics.ledgerCall("RegisterCluster", start, err)
		if err == nil {
			logger.Info("Registered on the ledger", "cluster", c.cfg.ClusterID, "capacity", capacity)
			return nil
		}
		var delay time.Duration
		now := c.clock.Now()
		switch {
		case unreachable(err):
			if unreachableSince.IsZero() {
				unreachableSince = now
			}
			left := unreachableSince.Add(c.cfg.RegisterTimeout).Sub(now)
			if left <= 0 {
				return fmt.Errorf("registering cluster %s on the ledger: unreachable for --register-timeout %s: %w", c.cfg.ClusterID, c.cfg.RegisterTimeout, err)
			}
			delay = min(backoff.Step(), left)
			c.setStarting("registering on the ledger: " + c.ledgerDown().Error())
			logger.Info("Registering on the ledger; retrying", "err", err, "in", delay, "giveUpIn", left)
		case chaincode.CodeOf(err) == chaincode.CodeForbidden && strings.Contains(err.Error(), chaincode.NotAdmitted):
			unreachableSince, backoff = time.Time{}, registerBackoff
			delay = admissionRetry
			c.setStarting("waiting for admission: the ledger's admin or a majority of its members admit " + c.cfg.ClusterID + " (edgemigrate ledger admit)")
			if !waited {
				logger.Info("Waiting for the ledger to admit this cluster (edgemigrate ledger admit, by the ledger's admin or a majority of its members)",
					"cluster", c.cfg.ClusterID, "err", err)
				waited = true
			}
		default:
			return fmt.Errorf("registering cluster %s on the ledger: %w", c.cfg.ClusterID, err)
		}
		select {
		case <-c.clock.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("registering cluster %s on the ledger: %w", c.cfg.ClusterID, err)
		}
	}
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

// reportCapacity reports the free capacity to the ledger; it also keeps the cluster live
// for bidding.
func (c *Controller) reportCapacity(ctx context.Context) {
	_, free := c.capacity()
	start := c.clock.Now()
	_, err := c.ledger.ReportCapacity(ctx, c.cfg.ClusterID, free)
	c.metrics.ledgerCall("ReportCapacity", start, err)
	if err != nil {
		logLedgerError(ctx, err, "Reporting capacity to the ledger", "cluster", c.cfg.ClusterID)
	}
}

// Resubscription to the ledger's event stream: 1 s doubling to 30 s, reset once events
// flow again.
var streamBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second, Steps: math.MaxInt32}

// watchLedger turns ledger events into work: each event names a migration to reconcile.
// The position reached is saved every checkpointSaveInterval. Without a saved position (a
// new cluster, or a lost checkpoint) the stream starts at the ledger's head and what is
// open is listed once it is subscribed: the work is bounded by the open migrations, not by
// the ledger's history. When the subscription fails or the stream ends while ctx lives
// (whatever the backend does about it), it subscribes again, with backoff, from the last
// event handled: none is missed.
func (c *Controller) watchLedger(ctx context.Context) {
	logger := klog.FromContext(ctx)
	after := c.loadCheckpoint(ctx)
	if after == (ledger.Checkpoint{}) {
		after = ledger.Head
	}
	var mu sync.Mutex
	last, saved := after, after
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		mu.Lock()
		cp := last
		mu.Unlock()
		if cp == saved {
			return
		}
		if err := c.saveCheckpoint(ctx, cp); err != nil {
			logger.Error(err, "Saving the ledger checkpoint")
			return
		}
		saved = cp
	}, checkpointSaveInterval)
	backoff := streamBackoff
	for ctx.Err() == nil {
		mu.Lock()
		from := last
		mu.Unlock()
		events, err := c.ledger.Events(ctx, from)
		if err == nil {
			if from == ledger.Head {
				// Subscribed first, listed second: nothing falls between the two.
				c.resync(ctx)
			}
			n := 0
			for ev := range events {
				if n++; n == 1 {
					backoff = streamBackoff
				}
				c.onLedgerEvent(ev)
				if ev.MigrationID != "" {
					logger.V(4).Info("Ledger event", "event", ev.Type, "migration", ev.MigrationID, "state", ev.State, "cluster", ev.ClusterID)
					c.queue.Add(queueKey{Kind: keyLedger, Name: ev.MigrationID})
				}
				mu.Lock()
				last = ev.Checkpoint
				mu.Unlock()
			}
			if ctx.Err() != nil {
				return
			}
			err = errors.New("the event stream ended")
		}
		delay := backoff.Step()
		if unreachable(err) {
			logger.V(2).Info("Subscribing to ledger events; retrying", "err", err, "in", delay)
		} else {
			logger.Error(err, "Subscribing to ledger events; retrying", "in", delay, "after", from)
		}
		select {
		case <-c.clock.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

// tidyInterval paces tidyLedger: expiry and compaction windows are minutes and hours.
const tidyInterval = 5 * time.Minute

// tidyLedger keeps the ledger bounded (any member may; each cluster tidies its own): the
// migrations this cluster proposed that are still open ExpiryGrace after their deadline
// are expired, and those finished RetentionWindow ago compacted. Another cluster's overdue
// migration is expired too once twice the grace has passed: its source may be gone.
func (c *Controller) tidyLedger(ctx context.Context, open []*chaincode.Migration) {
	local := c.clock.Now()
	if last := c.tidied.Load(); last != 0 && local.Sub(time.Unix(0, last)) < tidyInterval {
		return
	}
	c.tidied.Store(local.UnixNano())
	// Deadlines and finishing times are the ledger's stamps: compared in its time.
	now := c.ledgerNow()
	logger := klog.FromContext(ctx)
	for _, m := range open {
		deadline, err := time.Parse(time.RFC3339Nano, m.Deadline)
		if err != nil || (m.State != chaincode.StateProposed && m.State != chaincode.StateDecided) {
			continue
		}
		grace := chaincode.ExpiryGrace + chaincode.MaxClockSkew
		if m.Source != c.cfg.ClusterID {
			grace += chaincode.ExpiryGrace
		}
		if now.Before(deadline.Add(grace)) {
			continue
		}
		if _, err := c.ledger.ExpireMigration(ctx, m.ID); err != nil && chaincode.CodeOf(err) != chaincode.CodeConflict && chaincode.CodeOf(err) != chaincode.CodeNotYet {
			logger.Error(err, "Expiring an overdue migration", "migration", m.ID)
		} else if err == nil {
			logger.Info("Expired an overdue migration", "migration", m.ID, "source", m.Source, "deadline", m.Deadline)
		}
	}
	finished, err := c.ledger.ListFinishedMigrations(ctx)
	if err != nil {
		logLedgerError(ctx, err, "Listing finished migrations on the ledger")
		return
	}
	for _, f := range finished {
		t, err := time.Parse(time.RFC3339Nano, f.FinishedAt)
		// Ledger ids are <source cluster>-<12 hex>: this cluster compacts what it proposed.
		if err != nil || !strings.HasPrefix(f.ID, c.cfg.ClusterID+"-") || now.Before(t.Add(chaincode.RetentionWindow+chaincode.MaxClockSkew)) {
			continue
		}
		if _, err := c.ledger.CompactMigration(ctx, f.ID); err != nil && chaincode.CodeOf(err) != chaincode.CodeNotFound && chaincode.CodeOf(err) != chaincode.CodeNotYet {
			logger.Error(err, "Compacting a finished migration", "migration", f.ID)
		}
	}
}

func (c *Controller) loadCheckpoint(ctx context.Context) ledger.Checkpoint {
	var cp ledger.Checkpoint
	cm, err := c.kube.CoreV1().ConfigMaps(c.cfg.Namespace).Get(ctx, checkpointConfigMap, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Error(err, "Reading the ledger checkpoint; replaying the event stream")
		}
		return cp
	}
	if err := json.Unmarshal([]byte(cm.Data[c.cfg.ClusterID]), &cp); err != nil {
		klog.FromContext(ctx).Error(err, "Decoding the ledger checkpoint; replaying the event stream")
	}
	return cp
}

func (c *Controller) saveCheckpoint(ctx context.Context, cp ledger.Checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encoding the ledger checkpoint: %w", err)
	}
	cms := c.kube.CoreV1().ConfigMaps(c.cfg.Namespace)
	cm, err := cms.Get(ctx, checkpointConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: checkpointConfigMap, Namespace: c.cfg.Namespace},
			Data: map[string]string{c.cfg.ClusterID: string(data)}}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[c.cfg.ClusterID] = string(data)
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// syncLedger handles a migration seen on the ledger: bid on others' proposals, take up the
// destination's part when chosen, and hand the rest to the Migration objects it concerns.
func (c *Controller) syncLedger(ctx context.Context, id string) (time.Duration, error) {
	start := c.clock.Now()
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
	if lm.Source == c.cfg.ClusterID {
		return 0, nil
	}
	if lm.State == chaincode.StateProposed && !slices.ContainsFunc(lm.Bids, func(b chaincode.Bid) bool { return b.ClusterID == c.cfg.ClusterID }) {
		return 0, c.bid(ctx, lm)
	}
	chosen := lm.Decision != nil && lm.Decision.Destination == c.cfg.ClusterID
	if chosen && (lm.State == chaincode.StateDecided || lm.State == chaincode.StateReady) && len(c.migrationsByIndex(indexLedgerID, id)) == 0 {
		return 0, c.createDestinationMigration(ctx, lm)
	}
	return 0, nil
}

// bid evaluates a proposal against this cluster and submits the result.
func (c *Controller) bid(ctx context.Context, lm *chaincode.Migration) error {
	logger := klog.FromContext(ctx)
	if c.cfg.DryRun {
		logger.Info("Dry run: not bidding", "migration", lm.ID, "source", lm.Source)
		return nil
	}
	d := jetson.Demand{CPUMilli: lm.Metadata.CPUMilli, Memory: lm.Metadata.MemoryBytes, GPUMemory: lm.Metadata.GPUMemoryBytes, GPUSlots: lm.Metadata.GPUSlots}
	replicas := max(lm.Metadata.Replicas, 1)
	ev := c.evaluateProposal(ctx, lm, d, replicas)
	covers := lm.ClientLocation != nil && c.cfg.Coverage.Covers(pointOf(*lm.ClientLocation))
	in := chaincode.BidInput{ClusterID: c.cfg.ClusterID, CanHost: ev.canHost, CoversClient: covers, Score: float64(ev.score)}
	if !ev.canHost {
		in.Reason = chaincode.Truncate(ev.reason, chaincode.MaxTextLength)
	}
	start := c.clock.Now()
	_, err := c.ledger.SubmitBid(ctx, lm.ID, in)
	c.metrics.ledgerCall("SubmitBid", start, err)
	if err != nil {
		if chaincode.CodeOf(err) == chaincode.CodeConflict {
			return nil // already bid, or decided meanwhile
		}
		return fmt.Errorf("bidding on migration %s: %w", lm.ID, err)
	}
	c.metrics.bids.WithLabelValues(strconv.FormatBool(ev.canHost), strconv.FormatBool(covers)).Inc()
	logger.Info("Bid", "migration", lm.ID, "source", lm.Source, "workload", lm.Workload, "replicas", replicas,
		"demand", d.String(), "canHost", ev.canHost, "coversClient", covers, "score", ev.score, "why", ev.reason)
	return nil
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
	return placeReplicas(c.cfg.Policy, len(nodes), func(i int) (jetson.Capacity, *jetson.Demand) { return nodes[i].capa, &nodes[i].used }, d, replicas)
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
