package app

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// TestLedgerMembershipCommands: on a real ledger server, the operator's certificate sets
// the ledger up as its admin, with its dead-after window, and admits a cluster, which may then register; the cluster's
// own MSP may not admit another.
func TestLedgerMembershipCommands(t *testing.T) {
	dir := t.TempDir()
	ca, err := mtls.NewCA("cli-ca")
	if err != nil {
		t.Fatal(err)
	}
	files := func(name, msp string) mtls.Files {
		f, err := ca.WriteIdentity(filepath.Join(dir, name), name, msp, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	o := remote.NewServerOptions()
	o.DBPath, o.TLS, o.NoSync = filepath.Join(dir, "ledger.db"), files("ledger", "LedgerMSP"), true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- remote.Serve(ctx, o, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ledger server: %v", err)
		}
	})
	url := "https://" + ln.Addr().String()
	run := func(id mtls.Files, args ...string) (string, error) {
		cmd := newLedgerCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append(append([]string{}, args...), "--ledger-url="+url,
			"--tls-cert-file="+id.CertFile, "--tls-key-file="+id.KeyFile, "--tls-ca-file="+id.CAFile))
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	operator, edge := files("operator", "OperatorMSP"), files("edge-a", "EdgeAMSP")
	if _, err := run(operator, "init", "--admin-msp=OperatorMSP", "--dead-after=1500ms"); err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Errorf("init with a dead-after of 1.5 s: %v, want refused", err)
	}
	if out, err := run(operator, "init", "--admin-msp=OperatorMSP", "--dead-after=45s"); err != nil || !strings.Contains(out, `"deadAfterSeconds": 45`) {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := run(operator, "admit", "--cluster=edge-a", "--msp=EdgeAMSP")
	if err != nil || !strings.Contains(out, `"admitted": true`) {
		t.Fatalf("admit: %v\n%s", err, out)
	}
	if _, err := run(edge, "admit", "--cluster=edge-b", "--msp=EdgeAMSP"); chaincode.CodeOf(err) != chaincode.CodeForbidden {
		t.Errorf("a non-member admitting: %v, want %q", err, chaincode.CodeForbidden)
	}
	id, err := mtls.Load(edge)
	if err != nil {
		t.Fatal(err)
	}
	l, err := remote.Dial(url, id)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.RegisterCluster(ctx, chaincode.ClusterRegistration{ID: "edge-a"}); err != nil {
		t.Fatalf("registering the admitted cluster: %v", err)
	}
	if _, err := run(operator, "remove", "--cluster=edge-a", "--reason=decommissioned"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GetCluster(ctx, "edge-a"); chaincode.CodeOf(err) != chaincode.CodeNotFound {
		t.Errorf("removed cluster: %v", err)
	}
}

// TestLedgerServeFlags: `edgemigrate ledger serve` is the server, with --dead-after in its
// options and help.
func TestLedgerServeFlags(t *testing.T) {
	cmd := newLedgerCommand()
	serve, _, err := cmd.Find([]string{"serve"})
	if err != nil || serve.Name() != "serve" {
		t.Fatalf("ledger serve: %v", err)
	}
	for _, c := range []*cobra.Command{cmd, serve} {
		f := c.Flags().Lookup("dead-after")
		if f == nil || !strings.Contains(f.Usage, "mark it dead") {
			t.Errorf("%s: --dead-after %+v, want a flag whose help says what it does", c.Name(), f)
			continue
		}
		if err := c.Flags().Parse([]string{"--dead-after=90s"}); err != nil || f.Value.String() != "1m30s" {
			t.Errorf("%s --dead-after=90s: %v, value %s", c.Name(), err, f.Value)
		}
	}
	initCmd, _, err := cmd.Find([]string{"init"})
	if err != nil || initCmd.Flags().Lookup("dead-after") == nil {
		t.Errorf("ledger init has no --dead-after (%v)", err)
	}
}
