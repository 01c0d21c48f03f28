package chaincode

// Dead clusters and the homes of services (issue #17). Stubs until the ledger branch lands.

// MarkClusterDead marks a cluster silent for longer than the ledger's dead-after window as
// dead; any member may.
func MarkClusterDead(st State, clusterID string) (*Cluster, error) {
	return nil, refuse(CodeInvalid, "MarkClusterDead is not implemented yet")
}

// RehomeService moves the service of origin back to the source of the migration that put it
// on a cluster now dead; only that source may.
func RehomeService(st State, origin string) (*Home, error) {
	return nil, refuse(CodeInvalid, "RehomeService is not implemented yet")
}

// GetHome returns where the service of origin runs, per the ledger.
func GetHome(st State, origin string) (*Home, error) {
	return nil, refuse(CodeNotFound, "no home for origin %q", truncate(origin))
}

// ListHomes returns every service's home, sorted by origin.
func ListHomes(st State) ([]*Home, error) { return nil, nil }
