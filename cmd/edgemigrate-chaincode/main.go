// Command edgemigrate-chaincode runs the migration ledger's contract as a Fabric
// chaincode-as-a-service: the peer's ccaas external builder connects to it at the address
// of the package's connection.json. It has no Kubernetes dependencies, so it can run next to
// a peer anywhere.
//
// Environment, as Fabric's CCaaS samples use it:
//
//	CHAINCODE_SERVER_ADDRESS  host:port to listen on (required)
//	CHAINCODE_ID              the package id the peer knows the chaincode by (required)
//	CHAINCODE_TLS_DISABLED    "true" (default) or "false"
//	CHAINCODE_TLS_KEY, CHAINCODE_TLS_CERT   server key and certificate files, with TLS
//	CHAINCODE_CLIENT_CA_CERT  CA file to verify peers' client certificates (optional)
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"

	"github.com/edgemigrate/edgemigrate/chaincode/contract"
)

func main() {
	if err := run(os.Getenv); err != nil {
		slog.Error("Chaincode server failed", "err", err)
		os.Exit(1)
	}
}

func run(getenv func(string) string) error {
	server, err := serverFromEnv(getenv)
	if err != nil {
		return err
	}
	cc, err := contract.NewChaincode()
	if err != nil {
		return err
	}
	server.CC = cc
	slog.Info("Serving chaincode", "address", server.Address, "chaincodeID", server.CCID, "tls", !server.TLSProps.Disabled)
	if err := server.Start(); err != nil {
		return fmt.Errorf("serving chaincode on %s: %w", server.Address, err)
	}
	return nil
}

// serverFromEnv reads the server's configuration; the chaincode is set by the caller.
func serverFromEnv(getenv func(string) string) (*shim.ChaincodeServer, error) {
	s := &shim.ChaincodeServer{CCID: getenv("CHAINCODE_ID"), Address: getenv("CHAINCODE_SERVER_ADDRESS")}
	if s.CCID == "" || s.Address == "" {
		return nil, fmt.Errorf("CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS must be set")
	}
	disabled := true
	if v := getenv("CHAINCODE_TLS_DISABLED"); v != "" {
		var err error
		if disabled, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("CHAINCODE_TLS_DISABLED=%q is not a boolean", v)
		}
	}
	s.TLSProps.Disabled = disabled
	if disabled {
		return s, nil
	}
	read := func(env string, required bool) ([]byte, error) {
		path := getenv(env)
		if path == "" {
			if required {
				return nil, fmt.Errorf("%s must be set when TLS is enabled", env)
			}
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", env, err)
		}
		return b, nil
	}
	var err error
	if s.TLSProps.Key, err = read("CHAINCODE_TLS_KEY", true); err != nil {
		return nil, err
	}
	if s.TLSProps.Cert, err = read("CHAINCODE_TLS_CERT", true); err != nil {
		return nil, err
	}
	if s.TLSProps.ClientCACerts, err = read("CHAINCODE_CLIENT_CA_CERT", false); err != nil {
		return nil, err
	}
	return s, nil
}
