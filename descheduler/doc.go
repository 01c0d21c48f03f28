// Package descheduler is edgemigrate's migration controller, run in every edge cluster. It
// starts migrations (a client left this cluster's coverage, an opted-in pod cannot be
// scheduled, or a user asked), bids on other clusters' migrations with the Jetson fit model,
// runs the destination's part (create, wait Ready, report) and the source's (point the
// client locator at the destination, then remove the local copy: make before break), and
// serves the client locator API.
//
// Every step is level-triggered: the Migration objects in this cluster and the migrations
// on the ledger are the whole state, so a restart at any point resumes where it stopped.
// Each cluster writes only to its own API server; clusters talk only through the ledger.
package descheduler
