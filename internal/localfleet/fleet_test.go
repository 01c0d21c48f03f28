package localfleet

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/geo"
	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/mtls"
)

func TestMSPID(t *testing.T) {
	for _, tc := range []struct{ cluster, want string }{
		{"edge-a", "EdgeAMSP"},
		{"edge-b", "EdgeBMSP"},
		{"edge-27", "Edge27MSP"},
		{"daegu-north-1", "DaeguNorth1MSP"},
		{"solo", "SoloMSP"},
	} {
		if got := MSPID(tc.cluster); got != tc.want {
			t.Errorf("MSPID(%q) = %q, want %q", tc.cluster, got, tc.want)
		}
	}
}

func distanceM(a, b Site) float64 { return geo.Distance(a.Point(), b.Point()) }

func TestDefaultSites(t *testing.T) {
	sites := DefaultSites(4)
	var ids []string
	for _, s := range sites {
		ids = append(ids, s.ID)
	}
	if want := []string{"edge-a", "edge-b", "edge-c", "edge-d"}; !slices.Equal(ids, want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	for i := 1; i < len(sites); i++ {
		d := distanceM(sites[i-1], sites[i])
		if math.Abs(d-SiteSpacingM) > 1 {
			t.Errorf("%s–%s: %.1f m apart, want %.0f", sites[i-1].ID, sites[i].ID, d, SiteSpacingM)
		}
		// Neighbours overlap; the next but one does not.
		if d >= sites[i-1].RadiusM+sites[i].RadiusM {
			t.Errorf("%s and %s do not overlap", sites[i-1].ID, sites[i].ID)
		}
		if i >= 2 && distanceM(sites[i-2], sites[i]) <= sites[i-2].RadiusM+sites[i].RadiusM {
			t.Errorf("%s and %s overlap", sites[i-2].ID, sites[i].ID)
		}
	}
	if got := SiteID(26); got != "edge-26" {
		t.Errorf("SiteID(26) = %q", got)
	}
}

func TestOptionsDefaults(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "edgemigrate")
	if err := os.WriteFile(bin, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir() // not checked here: only Start needs the binaries
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
		check   func(t *testing.T, o Options)
	}{
		{name: "binary required", opts: Options{BinDir: binDir}, wantErr: "Options.Binary"},
		{name: "binary must exist", opts: Options{BinDir: binDir, Binary: bin + "-missing"}, wantErr: "no such file"},
		{name: "two clusters by default", opts: Options{BinDir: binDir, Binary: bin}, check: func(t *testing.T, o Options) {
			if o.Clusters != 2 || len(o.Sites) != 2 || o.Sites[1].ID != "edge-b" || len(o.Nodes(0)) != 3 || len(o.ClientTokens) != 1 {
				t.Errorf("defaults: %d clusters, sites %v, %d nodes, tokens %v", o.Clusters, o.Sites, len(o.Nodes(0)), o.ClientTokens)
			}
		}},
		{name: "clusters from sites", opts: Options{BinDir: binDir, Binary: bin, Sites: []Site{{ID: "x"}, {ID: "y"}, {ID: "z"}}}, check: func(t *testing.T, o Options) {
			if o.Clusters != 3 {
				t.Errorf("%d clusters for 3 sites", o.Clusters)
			}
		}},
		{name: "sites and clusters disagree", opts: Options{BinDir: binDir, Binary: bin, Clusters: 2, Sites: []Site{{ID: "x"}}}, wantErr: "1 sites for 2 clusters"},
		{name: "repeated site", opts: Options{BinDir: binDir, Binary: bin, Sites: []Site{{ID: "x"}, {ID: "x"}}}, wantErr: `"x" is empty or repeated`},
		{name: "empty site id", opts: Options{BinDir: binDir, Binary: bin, Sites: []Site{{}}}, wantErr: "empty or repeated"},
		{name: "one descheduler replica by default", opts: Options{BinDir: binDir, Binary: bin}, check: func(t *testing.T, o Options) {
			if o.DeschedulerReplicas != 1 || o.LedgerDeadAfter != 0 {
				t.Errorf("%d replicas, dead after %s; want 1 and the ledger's default", o.DeschedulerReplicas, o.LedgerDeadAfter)
			}
		}},
		{name: "negative replicas", opts: Options{BinDir: binDir, Binary: bin, DeschedulerReplicas: -1}, wantErr: "-1 descheduler replicas"},
		{name: "dead after in whole seconds", opts: Options{BinDir: binDir, Binary: bin, LedgerDeadAfter: 1500 * time.Millisecond}, wantErr: "whole seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			err := o.defaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestDeschedulerArgs(t *testing.T) {
	f := &Fleet{Dir: "/fleet", LedgerURL: "https://127.0.0.1:7000", opts: Options{DeschedulerArgs: []string{"--offload-after=1s"}}}
	e := &Edge{Site: Site{ID: "edge-b", Lat: 35.906, Lon: 128.611, RadiusM: 1200}, LocatorURL: "https://127.0.0.1:9001", fleet: f,
		Cluster:  &localcluster.Cluster{Kubeconfig: "/fleet/edge-b/kubeconfig"},
		Identity: mtls.Files{CertFile: "/fleet/pki/edge-b/tls.crt", KeyFile: "/fleet/pki/edge-b/tls.key", CAFile: "/fleet/pki/edge-b/ca.crt"}}
	got := strings.Join(e.deschedulerArgs("127.0.0.1:9001"), " ")
	for _, want := range []string{
		"descheduler ",
		"--cluster-id edge-b",
		"--kubeconfig /fleet/edge-b/kubeconfig",
		"--location 35.906,128.611",
		"--coverage-radius 1200 --coverage-hysteresis 120",
		"--public-endpoint https://127.0.0.1:9001 --listen-address 127.0.0.1:9001",
		"--tls-cert-file /fleet/pki/edge-b/tls.crt --tls-key-file /fleet/pki/edge-b/tls.key --tls-ca-file /fleet/pki/edge-b/ca.crt",
		"--ledger-backend remote --ledger-url https://127.0.0.1:7000",
		"--namespace edgemigrate-system",
		"--client-tokens-secret edgemigrate-client-tokens",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("descheduler args %q lack %q", got, want)
		}
	}
	if !strings.HasSuffix(got, " --offload-after=1s") {
		t.Errorf("descheduler args %q do not end with the extra flags", got)
	}
}

func TestLedgerArgs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		deadAfter time.Duration
		want      string
		wantNot   string
	}{
		{"default window", 0, "ledger serve --listen 127.0.0.1:7000 --db /fleet/ledger.db --no-sync", "--dead-after"},
		{"dead after 6s", 6 * time.Second, " --admin-msp ObserverMSP --dead-after 6s", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fleet{Dir: "/fleet", LedgerURL: "https://127.0.0.1:7000", opts: Options{LedgerDeadAfter: tc.deadAfter}}
			got := strings.Join(f.ledgerArgs(), " ")
			if !strings.Contains(got, tc.want) || (tc.wantNot != "" && strings.Contains(got, tc.wantNot)) {
				t.Errorf("ledger args %q: want %q, not %q", got, tc.want, tc.wantNot)
			}
		})
	}
}
