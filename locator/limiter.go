package locator

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how many new keys a limiterSet admits between sweeps of idle limiters.
const sweepEvery = 1024

// limiterSet is one token bucket per key (client id or remote IP), created on first use.
// Keys come from the network, so buckets that have refilled completely, and so behave
// exactly like new ones, are swept to bound memory.
type limiterSet struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	byKey    map[string]*rate.Limiter
	newSince int
}

func newLimiterSet(limit rate.Limit, burst int) *limiterSet {
	return &limiterSet{limit: limit, burst: burst, byKey: make(map[string]*rate.Limiter)}
}

func (s *limiterSet) get(key string, now time.Time) *rate.Limiter {
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

// allow takes a token for key at now; when there is none it says how long until there is.
func (s *limiterSet) allow(key string, now time.Time) (bool, time.Duration) {
	l := s.get(key, now)
	if l.AllowN(now, 1) {
		return true, 0
	}
	return false, retryAfter(l, now)
}

// exhausted reports whether key has no token left at now, without taking one, and if so
// how long until it has.
func (s *limiterSet) exhausted(key string, now time.Time) (bool, time.Duration) {
	s.mu.Lock()
	l, ok := s.byKey[key]
	s.mu.Unlock()
	if !ok || l.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, retryAfter(l, now)
}

// take takes a token for key at now if there is one.
func (s *limiterSet) take(key string, now time.Time) { s.get(key, now).AllowN(now, 1) }

func retryAfter(l *rate.Limiter, now time.Time) time.Duration {
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour
	}
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}
