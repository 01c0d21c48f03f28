package dashboard_test

import (
	"context"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/internal/dashboard"
)

// The demo builds a State from its clusters and ledger a few times a second and
// publishes it; browsers at http://127.0.0.1:8080 follow live.
func ExampleServer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s := dashboard.New(dashboard.Options{}) // 127.0.0.1:8080
	go func() {
		if err := s.ListenAndRun(ctx); err != nil {
			klog.ErrorS(err, "Dashboard stopped")
		}
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.Publish(dashboard.State{
				Time:     now,
				Clusters: []dashboard.Cluster{{ID: "edge-a", Center: dashboard.Point{Lat: 36.37, Lon: 127.34}, RadiusM: 1500}},
				Log:      []string{"edge-a is up"},
			})
		}
	}
}
