package descheduler

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"

	"github.com/edgemigrate/edgemigrate/api/v1alpha1"
	"github.com/edgemigrate/edgemigrate/chaincode"
)

// offsetClock is a cluster's clock set off from true time: Now and Since are skewed,
// waits are not.
type offsetClock struct {
	clock.WithTicker
	offset time.Duration
}

func (c offsetClock) Now() time.Time                  { return c.WithTicker.Now().Add(c.offset) }
func (c offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// TestClockSkew: one cluster's clock is off by ±5 s or ±3 min (and, beyond the expiry
// grace, +15 min), as the source or as a bidder, while the ledger keeps true time. Its
// ledgerNow follows the ledger, not its clock; the migration is decided on both bids (a
// source behind the ledger used to set a deadline already past, deciding on zero bids);
// nobody tries to expire it early; it completes.
func TestClockSkew(t *testing.T) {
	for _, off := range []time.Duration{5 * time.Second, -5 * time.Second, 3 * time.Minute, -3 * time.Minute, 15 * time.Minute} {
		for _, who := range []string{"edge-a", "edge-b"} {
			t.Run(fmt.Sprintf("%s %+v", who, off), func(t *testing.T) {
				w := newWorld(t)
				o := newOutage() // never down: it counts the calls
				add := func(id string, objs ...runtime.Object) *cluster {
					cl := w.newClusterWith(func(cl *cluster) {
						o.behind(cl)
						if cl.id == who {
							cl.clockOffset = off
						}
					}, id, nil, objs...)
					if err := cl.c.register(w.ctx); err != nil {
						t.Fatal(err)
					}
					cl.c.registered.Store(true)
					return cl
				}
				a := add("edge-a", deployment("svc", 1, "2Gi"), manual(v1alpha1.KindDeployment, "svc"))
				b := add("edge-b")
				add("edge-c")
				skewed := a
				if who == "edge-b" {
					skewed = b
				}
				// Read right after registering: the ledger's stamp, and no fake time passed.
				if d := skewed.c.ledgerNow().Sub(skewed.c.clock.Now().Add(-off)); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("ledgerNow is %s off true time; want the ledger's time", d)
				}
				w.until("the source completes", func() bool {
					// Tidy on every round (it runs every few minutes otherwise).
					for _, cl := range w.clusters {
						if open, err := cl.c.ledger.ListOpenMigrations(w.ctx); err == nil {
							cl.c.tidied.Store(0)
							cl.c.tidyLedger(w.ctx, open)
						}
					}
					return a.only(v1alpha1.RoleSource).Status.Phase == v1alpha1.PhaseCompleted
				})
				lm := w.ledgerMigration(a.only(v1alpha1.RoleSource).Status.LedgerID)
				if len(lm.Bids) != 2 {
					t.Errorf("decided on %d bids %+v, want both edge-b's and edge-c's", len(lm.Bids), lm.Bids)
				}
				if lm.State != chaincode.StateCompleted {
					t.Errorf("ledger state %s", lm.State)
				}
				o.mu.Lock()
				expires := o.submitted["ExpireMigration"]
				o.mu.Unlock()
				if expires != 0 {
					t.Errorf("%d attempts to expire a migration before its time", expires)
				}
			})
		}
	}
}
