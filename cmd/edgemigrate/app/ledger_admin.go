package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgemigrate/edgemigrate/chaincode"
	"github.com/edgemigrate/edgemigrate/ledger"
	"github.com/edgemigrate/edgemigrate/ledger/remote"
	"github.com/edgemigrate/edgemigrate/mtls"
)

// ledgerClientOptions reach an `edgemigrate ledger` server as the identity of a certificate:
// the membership commands act as its MSP (the ledger's admin, or a member that votes).
type ledgerClientOptions struct {
	url string
	tls mtls.Files
}

func (o *ledgerClientOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.url, "ledger-url", "", "URL of the edgemigrate ledger server (https)")
	fs.StringVar(&o.tls.CertFile, "tls-cert-file", "", "PEM certificate to act as (its first Organization is the MSP id)")
	fs.StringVar(&o.tls.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.StringVar(&o.tls.CAFile, "tls-ca-file", "", "PEM bundle of the CAs the server's certificate is verified against")
}

// do dials the ledger, runs fn and prints its result as JSON.
func (o *ledgerClientOptions) do(cmd *cobra.Command, fn func(context.Context, ledger.Ledger) (any, error)) error {
	if o.url == "" {
		return errors.New("--ledger-url is required")
	}
	id, err := mtls.Load(o.tls)
	if err != nil {
		return err
	}
	l, err := remote.Dial(o.url, id)
	if err != nil {
		return err
	}
	defer l.Close()
	out, err := fn(cmd.Context(), l)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(data))
	return err
}

// newLedgerMembershipCommands are `edgemigrate ledger init|admit|remove`: a cluster
// registers only once its id is admitted for its MSP.
func newLedgerMembershipCommands() []*cobra.Command {
	var (
		o              ledgerClientOptions
		admin          string
		deadAfter      time.Duration
		cluster, msp   string
		removalCluster string
		reason         string
	)
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Set a new ledger up: name its admin MSP, which admits clusters (once; servers started with --admin-msp are set up already)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seconds, err := chaincode.DeadAfterSeconds(deadAfter)
			if err != nil {
				return fmt.Errorf("--dead-after: %w", err)
			}
			return o.do(cmd, func(ctx context.Context, l ledger.Ledger) (any, error) {
				return l.InitLedger(ctx, chaincode.LedgerConfig{AdminMSP: admin, DeadAfterSeconds: seconds})
			})
		},
	}
	initCmd.Flags().StringVar(&admin, "admin-msp", "", "MSP id of the ledger's admin")
	initCmd.Flags().DurationVar(&deadAfter, "dead-after", 0, fmt.Sprintf(
		"how long a cluster may stay silent before any other member may mark it dead, whole seconds up to 24h; fixed once set up (0: %s)", chaincode.DefaultDeadAfter))
	admit := &cobra.Command{
		Use:   "admit",
		Short: "Admit a cluster id for an MSP: as the admin at once, as a member by vote (a majority of member MSPs admits)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.do(cmd, func(ctx context.Context, l ledger.Ledger) (any, error) {
				return l.AdmitCluster(ctx, chaincode.AdmissionInput{ClusterID: cluster, MSPID: msp})
			})
		},
	}
	admit.Flags().StringVar(&cluster, "cluster", "", "cluster id to admit")
	admit.Flags().StringVar(&msp, "msp", "", "MSP id that may register it")
	remove := &cobra.Command{
		Use:   "remove",
		Short: "End a cluster's membership (the admin, or the cluster's own MSP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.do(cmd, func(ctx context.Context, l ledger.Ledger) (any, error) {
				return l.RemoveCluster(ctx, removalCluster, reason)
			})
		},
	}
	remove.Flags().StringVar(&removalCluster, "cluster", "", "cluster id to remove")
	remove.Flags().StringVar(&reason, "reason", "", "why, for the record")
	cmds := []*cobra.Command{initCmd, admit, remove}
	for _, c := range cmds {
		o.addFlags(c.Flags())
	}
	return cmds
}
