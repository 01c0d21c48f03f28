package locator

import (
	"sync"
	"time"

	"github.com/edgemigrate/edgemigrate/geo"
)

// Location is the last position a client reported and when the locator accepted it.
type Location struct {
	Point geo.Point `json:"point"`
	Time  time.Time `json:"time"`
}

// Locations holds the latest accepted location of each client. It is safe for concurrent use.
type Locations struct {
	mu   sync.RWMutex
	byID map[string]Location
}

func newLocations() *Locations { return &Locations{byID: make(map[string]Location)} }

// Get returns the latest location of the client, if it reported one.
func (l *Locations) Get(clientID string) (Location, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	loc, ok := l.byID[clientID]
	return loc, ok
}

// Delete forgets a client, e.g. once its service has moved away.
func (l *Locations) Delete(clientID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byID, clientID)
}

// Len is the number of clients with a known location.
func (l *Locations) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.byID)
}

func (l *Locations) set(clientID string, loc Location) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID[clientID] = loc
}
