package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {time.Hour, "3600"}} {
		if got := RetryAfter(tc.wait); got != tc.want {
			t.Errorf("RetryAfter(%v) = %s, want %s", tc.wait, got, tc.want)
		}
	}
}

func TestSet(t *testing.T) {
	s := New(2, 2) // 2/s, burst 2
	now := start
	for i, want := range []bool{true, true, false} {
		if ok, _ := s.Allow("a", now); ok != want {
			t.Fatalf("take %d at once: %v, want %v", i, ok, want)
		}
	}
	if ok, wait := s.Allow("a", now); ok || wait != 500*time.Millisecond {
		t.Errorf("exhausted: allow = %v, wait %v; want false, 500ms", ok, wait)
	}
	if blocked, wait := s.Exhausted("a", now); !blocked || wait != 500*time.Millisecond {
		t.Errorf("exhausted(a) = %v, %v; want true, 500ms", blocked, wait)
	}
	// Asking does not take a token, nor does an unknown key create a bucket.
	if blocked, _ := s.Exhausted("b", now); blocked || len(s.byKey) != 1 {
		t.Errorf("exhausted(b) = %v with %d buckets; want false and 1", blocked, len(s.byKey))
	}
	if ok, _ := s.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Error("no token after 500ms at 2/s")
	}
}

func TestSetSweepsRefilledBuckets(t *testing.T) {
	s := New(1, 1)
	now := start
	// sweepEvery new keys, the last of which sweeps: every bucket is empty, so all stay.
	s.Take("busy", now)
	for i := range sweepEvery {
		s.Take("ip-"+strconv.Itoa(i), now)
	}
	if len(s.byKey) != sweepEvery+1 {
		t.Fatalf("%d buckets after a sweep with none refilled, want %d", len(s.byKey), sweepEvery+1)
	}
	// A second later they are all full again, indistinguishable from new ones: swept.
	later := now.Add(time.Second)
	for i := range sweepEvery {
		s.get("late-"+strconv.Itoa(i), later)
	}
	if len(s.byKey) > sweepEvery {
		t.Errorf("%d buckets after a sweep of refilled ones, want at most %d", len(s.byKey), sweepEvery)
	}
	if _, kept := s.byKey["busy"]; kept {
		t.Error("refilled bucket was not swept")
	}
	// A bucket that is still empty is kept.
	s = New(0.001, 1)
	s.Take("slow", now)
	for i := range sweepEvery {
		s.get("x-"+strconv.Itoa(i), now.Add(time.Second))
	}
	if blocked, _ := s.Exhausted("slow", now.Add(time.Second)); !blocked {
		t.Error("sweep forgot a bucket that had not refilled: its client got a fresh burst")
	}
}
