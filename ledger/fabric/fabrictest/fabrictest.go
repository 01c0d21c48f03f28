// Package fabrictest brings up, for a test, a local Hyperledger Fabric network with the
// edgemigrate chaincode (hack/fabric/network.sh, from the Fabric release binaries the user
// points FABRIC_BIN at), and skips, saying why, when there are none.
package fabrictest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Network is a running network, as network.sh describes it in clients.json.
type Network struct {
	Channel   string `json:"channel"`
	Chaincode string `json:"chaincode"`
	// Orgs are the two organisations, one per edge cluster.
	Orgs []Org `json:"orgs"`
}

// Org is an organisation's peer and client identity (PEM file paths).
type Org struct {
	MSPID        string `json:"mspId"`
	PeerEndpoint string `json:"peerEndpoint"`
	TLSCACert    string `json:"tlsCACert"`
	ServerName   string `json:"serverName"`
	Cert         string `json:"cert"`
	Key          string `json:"key"`
}

// Up starts a network with the chaincode deployed, stopped when the test ends. It skips
// under -short and, loudly, when FABRIC_BIN is not set; what is the test is the caller's.
func Up(tb testing.TB, what string) *Network {
	tb.Helper()
	if os.Getenv("FABRIC_BIN") == "" {
		tb.Skip("SKIP: " + what + " not run: FABRIC_BIN is not set. Point it at the bin/ of a Fabric release " +
			"(peer, orderer, configtxgen, cryptogen, osnadmin, discover; builders/ccaas beside it; see hack/fabric/README.md) " +
			"to run it against a real network")
	}
	if testing.Short() {
		tb.Skip("SKIP: " + what + " not run under -short")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "hack", "fabric", "network.sh")
	work := tb.TempDir()
	run := func(arg string) {
		cmd := exec.Command(script, arg)
		// A dead-after window of 1 s: the suite waits it out (and the clock skew) in real time.
		cmd.Env = append(os.Environ(), "FABRIC_WORK="+work, "FABRIC_DEAD_AFTER_SECONDS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("network.sh %s: %v\n%s", arg, err, out)
		}
	}
	tb.Cleanup(func() { run("down") })
	start := time.Now()
	run("up")
	run("deploy")
	tb.Logf("Fabric network up and chaincode deployed in %v", time.Since(start).Round(10*time.Millisecond))
	data, err := os.ReadFile(filepath.Join(work, "clients.json"))
	if err != nil {
		tb.Fatal(err)
	}
	n := new(Network)
	if err := json.Unmarshal(data, n); err != nil {
		tb.Fatalf("decoding clients.json: %v", err)
	}
	if len(n.Orgs) != 2 {
		tb.Fatalf("clients.json lists %d organisations, want 2", len(n.Orgs))
	}
	return n
}
