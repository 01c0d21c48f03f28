package remote

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/gin-gonic/gin"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/edgemigrate/edgemigrate/internal/serve"
	"github.com/edgemigrate/edgemigrate/ledger/embedded"
)

// ServerOptions configure `edgemigrate ledger`: one embedded ledger served to the
// processes of one machine (the demo's clusters, say). Across machines and operators the
// ledger is Fabric.
type ServerOptions struct {
	// Listen is the address to serve on; loopback by default, as there is no TLS.
	Listen string
	// DBPath is the bbolt file holding the ledger's state and event log.
	DBPath string
	// IdentitiesPath is the JSON list of bearer tokens and the MSP id each acts as.
	IdentitiesPath string
	// NoSync trades durability against power loss for speed (see embedded.Options).
	NoSync bool
}

// NewServerOptions returns the defaults.
func NewServerOptions() *ServerOptions {
	return &ServerOptions{Listen: "127.0.0.1:7070", DBPath: "edgemigrate-ledger.db"}
}

// AddFlags binds the options to flags.
func (o *ServerOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", o.Listen, "address to serve the ledger on (no TLS: keep it on loopback)")
	fs.StringVar(&o.DBPath, "db", o.DBPath, "file holding the ledger's state and event log")
	fs.StringVar(&o.IdentitiesPath, "identities", o.IdentitiesPath,
		`JSON file of the clients' bearer tokens and MSP ids: [{"token": "...", "mspId": "Org1MSP"}]`)
	fs.BoolVar(&o.NoSync, "no-sync", o.NoSync, "skip the disk sync at each commit (tests and demos)")
}

// Validate reports the first missing option.
func (o *ServerOptions) Validate() error {
	switch {
	case o.Listen == "":
		return errors.New("--listen is required")
	case o.DBPath == "":
		return errors.New("--db is required")
	case o.IdentitiesPath == "":
		return errors.New("--identities is required: without it no client could act as any MSP")
	}
	return nil
}

// RunServer listens on o.Listen and serves until ctx ends.
func RunServer(ctx context.Context, o *ServerOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Listen, err)
	}
	return Serve(ctx, o, ln)
}

// Serve opens the ledger and serves it on ln, with /healthz, /readyz and /metrics, until
// ctx ends; then it closes the ledger.
func Serve(ctx context.Context, o *ServerOptions, ln net.Listener) error {
	ids, err := LoadIdentities(o.IdentitiesPath)
	if err != nil {
		ln.Close()
		return err
	}
	reg := serve.NewRegistry()
	store, err := embedded.Open(o.DBPath, embedded.Options{NoSync: o.NoSync, Registerer: reg})
	if err != nil {
		ln.Close()
		return fmt.Errorf("opening ledger %s: %w", o.DBPath, err)
	}
	defer store.Close()
	engine := serve.NewEngine(reg, func() error { return nil })
	engine.Any("/v1/*path", gin.WrapH(NewHandler(store, ids)))
	klog.InfoS("Serving the embedded ledger", "address", ln.Addr().String(), "db", o.DBPath, "identities", len(ids))
	return serve.Serve(ctx, ln, engine, nil)
}
