// Package ratelimit keeps one token bucket per key (a client id, a remote address, an MSP
// id) for the servers that face the network.
package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how many new keys a Set admits between sweeps of idle limiters.
const sweepEvery = 1024

// Set is one token bucket per key, created on first use.
// Keys come from the network, so buckets that have refilled completely, and so behave
// exactly like new ones, are swept to bound memory.
type Set struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	byKey    map[string]*rate.Limiter
	newSince int
}

// New returns a Set whose buckets refill at limit per second and hold burst tokens.
func New(limit rate.Limit, burst int) *Set {
	return &Set{limit: limit, burst: burst, byKey: make(map[string]*rate.Limiter)}
}

func (s *Set) get(key string, now time.Time) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.byKey[key]; ok {
		return l
	}
	if s.newSince++; s.newSince >= sweepEvery {
		s.newSince = 0
		for k, l := range s.byKey {
			if l.TokensAt(now) >= float64(s.burst) {
				delete(s.byKey, k)
			}
		}
	}
	l := rate.NewLimiter(s.limit, s.burst)
	s.byKey[key] = l
	return l
}

// Allow takes a token for key at now; when there is none it says how long until there is.
func (s *Set) Allow(key string, now time.Time) (bool, time.Duration) {
	l := s.get(key, now)
	if l.AllowN(now, 1) {
		return true, 0
	}
	return false, retryAfter(l, now)
}

// Exhausted reports whether key has no token left at now, without taking one, and if so
// how long until it has.
func (s *Set) Exhausted(key string, now time.Time) (bool, time.Duration) {
	s.mu.Lock()
	l, ok := s.byKey[key]
	s.mu.Unlock()
	if !ok || l.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, retryAfter(l, now)
}

// Take takes a token for key at now if there is one.
func (s *Set) Take(key string, now time.Time) { s.get(key, now).AllowN(now, 1) }

func retryAfter(l *rate.Limiter, now time.Time) time.Duration {
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour
	}
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// RetryAfter is the Retry-After header value for wait: whole seconds rounded up, at least one.
func RetryAfter(wait time.Duration) string {
	return strconv.FormatInt(max(int64(math.Ceil(wait.Seconds())), 1), 10)
}
