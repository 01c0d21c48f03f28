// Package profile is the driver-behaviour profiler image's logic. It is rule-based, not a
// trained model: a telemetry window (speed, longitudinal acceleration, yaw rate over time)
// is scanned for events that crossed documented thresholds — harsh braking, harsh
// acceleration, sharp turns at speed, speeding and jerk — and the events, weighted and
// counted per minute, give a score from 0 (reckless) to 100 (no event) and a profile:
// calm, moderate or aggressive. Window generates realistic windows of each style
// deterministically, for the car, the tests and the bench.
package profile

import (
	"errors"
	"fmt"
	"math"
)

// Sample is one telemetry reading.
type Sample struct {
	// T is the time in seconds; it must increase from sample to sample.
	T float64 `json:"t"`
	// Speed in m/s.
	Speed float64 `json:"speed"`
	// Accel is the longitudinal acceleration in m/s², negative when braking.
	Accel float64 `json:"accel"`
	// YawRate in rad/s; the lateral acceleration is Speed·YawRate.
	YawRate float64 `json:"yawRate"`
}

// Style is a driving profile.
type Style string

const (
	Calm       Style = "calm"
	Moderate   Style = "moderate"
	Aggressive Style = "aggressive"
)

// Styles are every profile, calmest first.
var Styles = []Style{Calm, Moderate, Aggressive}

// The rules' thresholds. An event is a run of consecutive samples past a threshold, counted
// once however long it lasts.
const (
	// HarshBraking: acceleration at or below −3 m/s² (about 0.3 g, the usual fleet-telematics figure).
	HarshBraking = -3.0
	// HarshAcceleration: acceleration at or above 2.5 m/s².
	HarshAcceleration = 2.5
	// SharpTurn: lateral acceleration |Speed·YawRate| at or above 3 m/s², at MinTurnSpeed or more.
	SharpTurn    = 3.0
	MinTurnSpeed = 5.0
	// SpeedLimit: speeding is above 27.8 m/s (100 km/h); the profiler knows no road's limit.
	SpeedLimit = 27.8
	// Jerk: the acceleration changing by 8 m/s³ or more between two samples.
	Jerk = 8.0
)

// Score weights: points lost per event per minute, and for speeding the points lost for
// the whole window spent above the limit. A window shorter than a minute counts as a minute,
// so that one braking does not make a short window aggressive.
const (
	penaltyBraking      = 12
	penaltyAcceleration = 8
	penaltyTurn         = 8
	penaltyJerk         = 4
	penaltySpeeding     = 40
)

// Profile boundaries on the score: at least CalmScore is calm, at least ModerateScore
// moderate, below it aggressive.
const (
	CalmScore     = 80
	ModerateScore = 50
)

// Limits of a window the profiler accepts.
const (
	MaxSamples = 4096
	maxSpeed   = 120 // m/s
	maxAccel   = 50  // m/s²
	maxYawRate = 10  // rad/s
)

// Events counts each rule's events in a window.
type Events struct {
	HarshBraking      int `json:"harshBraking"`
	HarshAcceleration int `json:"harshAcceleration"`
	SharpTurns        int `json:"sharpTurns"`
	Speeding          int `json:"speeding"`
	Jerk              int `json:"jerk"`
}

// Result is a window's profile.
type Result struct {
	Profile Style  `json:"profile"`
	Score   int    `json:"score"`
	Events  Events `json:"events"`
	// SpeedingSeconds is the time spent above SpeedLimit.
	SpeedingSeconds float64 `json:"speedingSeconds"`
	// Duration is the window's length in seconds and Samples its size.
	Duration float64 `json:"duration"`
	Samples  int     `json:"samples"`
}

// Validate checks a window: 1 to MaxSamples samples, finite values in physical ranges, T
// strictly increasing.
func Validate(samples []Sample) error {
	if len(samples) == 0 {
		return errors.New("samples: none, want 1 to 4096")
	}
	if len(samples) > MaxSamples {
		return fmt.Errorf("samples: %d, want at most %d", len(samples), MaxSamples)
	}
	for i, s := range samples {
		for _, v := range []struct {
			name  string
			value float64
			lo    float64
			hi    float64
		}{
			{"t", s.T, -math.MaxFloat64, math.MaxFloat64},
			{"speed", s.Speed, 0, maxSpeed},
			{"accel", s.Accel, -maxAccel, maxAccel},
			{"yawRate", s.YawRate, -maxYawRate, maxYawRate},
		} {
			if math.IsNaN(v.value) || math.IsInf(v.value, 0) {
				return fmt.Errorf("samples[%d].%s is not a finite number", i, v.name)
			}
			if v.value < v.lo || v.value > v.hi {
				return fmt.Errorf("samples[%d].%s is %g, want %g to %g", i, v.name, v.value, v.lo, v.hi)
			}
		}
		if i > 0 && !(s.T > samples[i-1].T) {
			return fmt.Errorf("samples[%d].t is %g, not after the previous sample's %g", i, s.T, samples[i-1].T)
		}
	}
	return nil
}

// Analyze profiles a window.
func Analyze(samples []Sample) (Result, error) {
	if err := Validate(samples); err != nil {
		return Result{}, err
	}
	r := Result{Samples: len(samples), Duration: samples[len(samples)-1].T - samples[0].T}
	var braking, accelerating, turning, speeding, jerking bool
	// rising counts an event when a condition becomes true.
	rising := func(now bool, was *bool, n *int) {
		if now && !*was {
			*n++
		}
		*was = now
	}
	for i, s := range samples {
		rising(s.Accel <= HarshBraking, &braking, &r.Events.HarshBraking)
		rising(s.Accel >= HarshAcceleration, &accelerating, &r.Events.HarshAcceleration)
		rising(s.Speed >= MinTurnSpeed && math.Abs(s.Speed*s.YawRate) >= SharpTurn, &turning, &r.Events.SharpTurns)
		rising(s.Speed > SpeedLimit, &speeding, &r.Events.Speeding)
		if i == 0 {
			continue
		}
		prev := samples[i-1]
		dt := s.T - prev.T
		rising(math.Abs(s.Accel-prev.Accel) >= Jerk*dt, &jerking, &r.Events.Jerk)
		if prev.Speed > SpeedLimit {
			r.SpeedingSeconds += dt
		}
	}
	minutes := max(r.Duration, 60) / 60
	e := r.Events
	penalty := float64(penaltyBraking*e.HarshBraking+penaltyAcceleration*e.HarshAcceleration+
		penaltyTurn*e.SharpTurns+penaltyJerk*e.Jerk) / minutes
	if r.Duration > 0 {
		penalty += penaltySpeeding * r.SpeedingSeconds / r.Duration
	} else if samples[0].Speed > SpeedLimit {
		penalty += penaltySpeeding
	}
	r.Score = int(math.Round(min(max(100-penalty, 0), 100)))
	switch {
	case r.Score >= CalmScore:
		r.Profile = Calm
	case r.Score >= ModerateScore:
		r.Profile = Moderate
	default:
		r.Profile = Aggressive
	}
	return r, nil
}
