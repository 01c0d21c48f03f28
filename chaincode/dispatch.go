package chaincode

import (
	"fmt"
	"maps"
	"slices"
)

// Queries are the functions that read only; clients evaluate rather than submit them.
var Queries = []string{"GetCluster", "ListClusters", "GetMigration", "ListOpenMigrations",
	"GetLedgerConfig", "GetAdmission", "ListAdmissions", "ListFinishedMigrations", "GetHome", "ListHomes"}

// Dispatch runs a transaction given as Fabric carries it: a function name and string
// arguments (structured ones as JSON), and returns the result as JSON. The embedded ledger
// uses it, so its arguments are decoded and checked exactly as on Fabric.
func Dispatch(st State, fn string, args []string) ([]byte, error) {
	want, ok := arity[fn]
	if !ok {
		return nil, refuse(CodeInvalid, "unknown function %q", truncate(fn))
	}
	if len(args) != want {
		return nil, refuse(CodeInvalid, "%s takes %d arguments, got %d", fn, want, len(args))
	}
	var (
		out any
		err error
	)
	switch fn {
	case "RegisterCluster":
		var r ClusterRegistration
		if r, err = ParseClusterRegistration(args[0]); err == nil {
			out, err = RegisterCluster(st, r)
		}
	case "ReportCapacity":
		var r Resources
		if r, err = ParseResources(args[1]); err == nil {
			out, err = ReportCapacity(st, args[0], r)
		}
	case "ProposeMigration":
		var p Proposal
		if p, err = ParseProposal(args[0]); err == nil {
			out, err = ProposeMigration(st, p)
		}
	case "SubmitBid":
		var b BidInput
		if b, err = ParseBid(args[1]); err == nil {
			out, err = SubmitBid(st, args[0], b)
		}
	case "Decide":
		out, err = Decide(st, args[0])
	case "ReportReady":
		out, err = ReportReady(st, args[0], args[1])
	case "ReportFailed":
		out, err = ReportFailed(st, args[0], args[1], args[2])
	case "Complete":
		out, err = Complete(st, args[0])
	case "Abort":
		out, err = Abort(st, args[0], args[1])
	case "InitLedger":
		var c LedgerConfig
		if c, err = ParseLedgerConfig(args[0]); err == nil {
			out, err = InitLedger(st, c)
		}
	case "AdmitCluster":
		var a AdmissionInput
		if a, err = ParseAdmission(args[0]); err == nil {
			out, err = AdmitCluster(st, a)
		}
	case "RemoveCluster":
		out, err = RemoveCluster(st, args[0], args[1])
	case "ExpireMigration":
		out, err = ExpireMigration(st, args[0])
	case "CompactMigration":
		out, err = CompactMigration(st, args[0])
	case "GetLedgerConfig":
		out, err = GetLedgerConfig(st)
	case "GetAdmission":
		out, err = GetAdmission(st, args[0])
	case "ListAdmissions":
		out, err = ListAdmissions(st)
	case "ListFinishedMigrations":
		out, err = ListFinishedMigrations(st)
	case "GetCluster":
		out, err = GetCluster(st, args[0])
	case "ListClusters":
		out, err = ListClusters(st)
	case "GetMigration":
		out, err = GetMigration(st, args[0])
	case "ListOpenMigrations":
		out, err = ListOpenMigrations(st)
	case "MarkClusterDead":
		out, err = MarkClusterDead(st, args[0])
	case "RehomeService":
		out, err = RehomeService(st, args[0])
	case "GetHome":
		out, err = GetHome(st, args[0])
	case "ListHomes":
		out, err = ListHomes(st)
	default:
		return nil, fmt.Errorf("function %s has an arity but no case", fn)
	}
	if err != nil {
		return nil, err
	}
	return marshal(out)
}

// Functions are the names of every transaction and query, sorted.
func Functions() []string { return slices.Sorted(maps.Keys(arity)) }

var arity = map[string]int{
	"RegisterCluster": 1, "ReportCapacity": 2, "ProposeMigration": 1, "SubmitBid": 2, "Decide": 1,
	"ReportReady": 2, "ReportFailed": 3, "Complete": 1, "Abort": 2,
	"GetCluster": 1, "ListClusters": 0, "GetMigration": 1, "ListOpenMigrations": 0,
	"InitLedger": 1, "AdmitCluster": 1, "RemoveCluster": 2, "ExpireMigration": 1, "CompactMigration": 1,
	"GetLedgerConfig": 0, "GetAdmission": 1, "ListAdmissions": 0, "ListFinishedMigrations": 0,
	"MarkClusterDead": 1, "RehomeService": 1, "GetHome": 1, "ListHomes": 0,
}
