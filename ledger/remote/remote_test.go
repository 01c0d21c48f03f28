package remote

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
	"github.com/edgemigrate/edgemigrate/ledger/ledgertest"
)

var identities = []Identity{{Token: "token-one", MSPID: "Org1MSP"}, {Token: "token-two", MSPID: "Org2MSP"}}

// serveLedger opens the ledger file at path and serves it; the server and store end with the test
// or when the returned stop is called.
func serveLedger(t *testing.T, path string) (url string, stop func()) {
	t.Helper()
	store, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(store, identities))
	stop = func() {
		srv.CloseClientConnections()
		srv.Close()
		store.Close()
	}
	t.Cleanup(stop)
	return srv.URL, stop
}

func dial(t *testing.T, url, token string) ledger.Ledger {
	t.Helper()
	c, err := NewClient(url, token, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	c.RetryInterval = 10 * time.Millisecond
	l := ledger.FromTransactor(c)
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBehaviour(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) *ledgertest.Backend {
		path := filepath.Join(t.TempDir(), "ledger.db")
		url, stop := serveLedger(t, path)
		return &ledgertest.Backend{
			Orgs: [2]ledger.Ledger{dial(t, url, "token-one"), dial(t, url, "token-two")},
			Restart: func(t *testing.T) [2]ledger.Ledger {
				stop()
				url, stop = serveLedger(t, path)
				return [2]ledger.Ledger{dial(t, url, "token-one"), dial(t, url, "token-two")}
			},
		}
	})
}

func TestUnknownTokenIsRefused(t *testing.T) {
	url, _ := serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
	for _, token := range []string{"", "token-three", "token-on"} {
		l := dial(t, url, token)
		if _, err := l.ListClusters(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("token %q: %v, want 401", token, err)
		}
		if _, err := l.Events(context.Background(), ledger.Checkpoint{}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("token %q: event stream: %v, want 401", token, err)
		}
	}
}

func TestBadRequests(t *testing.T) {
	url, _ := serveLedger(t, filepath.Join(t.TempDir(), "ledger.db"))
	cases := []struct {
		name, path, body string
		want             int
	}{
		{"not an array", "/v1/submit/Decide", `{"a":1}`, http.StatusBadRequest},
		{"unknown function", "/v1/submit/Steal", `[]`, http.StatusBadRequest},
		{"wrong arity", "/v1/submit/Decide", `[]`, http.StatusBadRequest},
		{"too large", "/v1/submit/Decide", `["` + strings.Repeat("x", maxRequestBytes) + `"]`, http.StatusBadRequest},
		{"unknown migration", "/v1/evaluate/GetMigration", `["m1"]`, http.StatusNotFound},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodPost, url+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer token-one")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestEventStreamSurvivesDroppedConnections drops every connection after each event: the
// client reconnects from the last event it delivered, so it sees each event exactly once.
func TestEventStreamSurvivesDroppedConnections(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "ledger.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(NewHandler(store, identities))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ledgertest.StreamTimeout)
	defer cancel()
	// Transactions go straight to the store: only the stream's connections are dropped.
	l := store.Client("Org1MSP")
	events, err := dial(t, srv.URL, "token-one").Events(ctx, ledger.Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		reg := chaincode.ClusterRegistration{ID: "edge-" + string(rune('a'+i))}
		if _, err := l.RegisterCluster(ctx, reg); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-events:
			if ev.ClusterID != reg.ID || ev.Checkpoint.Block != uint64(i+1) {
				t.Fatalf("event %d: %+v, want %s at block %d", i, ev, reg.ID, i+1)
			}
		case <-ctx.Done():
			t.Fatalf("no event %d", i)
		}
		srv.CloseClientConnections()
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected extra event %+v", ev)
	default:
	}
}

func TestLoadIdentities(t *testing.T) {
	cases := []struct {
		name, content, wantErr string
	}{
		{"valid", `[{"token":"a","mspId":"Org1MSP"},{"token":"b","mspId":"Org2MSP"}]`, ""},
		{"empty list", `[]`, "no identities"},
		{"no token", `[{"mspId":"Org1MSP"}]`, "needs a token"},
		{"reused token", `[{"token":"a","mspId":"Org1MSP"},{"token":"a","mspId":"Org2MSP"}]`, "reuses a token"},
		{"typo", `[{"tokn":"a","mspId":"Org1MSP"}]`, "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ids.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			ids, err := LoadIdentities(path)
			if tc.wantErr == "" {
				if err != nil || len(ids) != 2 || ids[1].MSPID != "Org2MSP" {
					t.Errorf("LoadIdentities = %+v, %v", ids, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
