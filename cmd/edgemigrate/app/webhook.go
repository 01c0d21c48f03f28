package app

import (
	"github.com/spf13/cobra"

	"github.com/edgemigrate/edgemigrate/webhook"
)

// newWebhookCommand runs the mutating admission webhook.
func newWebhookCommand() *cobra.Command {
	opts := webhook.NewOptions()
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the mutating admission webhook that opts pods in and tags them for migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return webhook.Run(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}
