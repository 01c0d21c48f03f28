package profile

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Generated windows: 60 s at 10 Hz.
const (
	WindowSeconds = 60
	SampleRate    = 10 // Hz
)

// driving is how a style drives: its cruising speed, how hard the everyday speed keeping
// may accelerate, and the manoeuvres it makes in a window.
type driving struct {
	cruiseLo, cruiseHi float64 // m/s
	baseAccel          float64 // bound of everyday acceleration, m/s²
	manoeuvres         int
	kinds              []kind
	brake, boost, turn [2]float64 // magnitude ranges, m/s²
	ramp               float64    // s to reach a manoeuvre's magnitude
}

type kind int

const (
	brake kind = iota
	boost
	turn
)

var styles = map[Style]driving{
	// Town driving, gentle bends, nothing past a threshold.
	Calm: {cruiseLo: 11, cruiseHi: 16, baseAccel: 1.5, manoeuvres: 2, kinds: []kind{turn},
		turn: [2]float64{0.8, 1.8}, ramp: 1.5},
	// Three manoeuvres just past the thresholds, below the speed limit, smoothly.
	Moderate: {cruiseLo: 16, cruiseHi: 21, baseAccel: 1.5, manoeuvres: 3, kinds: []kind{brake, boost, turn},
		brake: [2]float64{3.3, 4.0}, boost: [2]float64{2.7, 3.1}, turn: [2]float64{3.3, 4.0}, ramp: 1.0},
	// Over the limit, six hard manoeuvres, abruptly.
	Aggressive: {cruiseLo: 29, cruiseHi: 33, baseAccel: 2.0, manoeuvres: 6, kinds: []kind{brake, boost, turn},
		brake: [2]float64{5.0, 6.5}, boost: [2]float64{3.2, 4.0}, turn: [2]float64{4.5, 6.0}, ramp: 0.2},
}

type manoeuvre struct {
	kind      kind
	start     float64 // s
	hold      float64 // s at full magnitude
	magnitude float64 // m/s², signed for turns
}

// Window returns a deterministic 60 s window at 10 Hz of the given style: the same seed
// and style give the same samples. It panics on an unknown style, a programming error.
func Window(seed int64, style Style) []Sample {
	d, ok := styles[style]
	if !ok {
		panic(fmt.Sprintf("profile: unknown style %q", style))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x70726f66696c65))
	between := func(r [2]float64) float64 { return r[0] + rng.Float64()*(r[1]-r[0]) }
	target := between([2]float64{d.cruiseLo, d.cruiseHi})
	// One manoeuvre in each equal slot of the window, so that they never overlap.
	slot := float64(WindowSeconds) / float64(d.manoeuvres)
	ms := make([]manoeuvre, d.manoeuvres)
	for i := range ms {
		m := manoeuvre{kind: d.kinds[rng.IntN(len(d.kinds))], hold: 1 + rng.Float64()}
		if i == 0 && style == Moderate {
			m.kind = brake // a moderate window always has its harsh braking
		}
		switch m.kind {
		case brake:
			m.magnitude = -between(d.brake)
		case boost:
			m.magnitude = between(d.boost)
		case turn:
			m.hold += 1
			m.magnitude = between(d.turn)
			if rng.IntN(2) == 0 {
				m.magnitude = -m.magnitude
			}
		}
		room := slot - m.hold - 2*d.ramp - 2
		m.start = float64(i)*slot + 1 + rng.Float64()*max(room, 0)
		ms[i] = m
	}

	const dt = 1.0 / SampleRate
	n := WindowSeconds * SampleRate
	out := make([]Sample, n)
	v := target + rng.NormFloat64()
	base, yawNoise := 0.0, 0.0
	for i := range n {
		t := float64(i) * dt
		// Everyday speed keeping: an acceleration relaxing toward closing the gap to the
		// cruising speed, with noise, bounded.
		base += 2*(0.3*(target-v)-base)*dt + 0.3*math.Sqrt(dt)*rng.NormFloat64()
		base = min(max(base, -d.baseAccel), d.baseAccel)
		yawNoise = 0.9*yawNoise + 0.002*rng.NormFloat64()
		accel, lateral := base, 0.0
		for _, m := range ms {
			w := weight(t-m.start, m.hold, d.ramp)
			if w == 0 {
				continue
			}
			if m.kind == turn {
				lateral = w * m.magnitude
			} else {
				accel = (1-w)*base + w*m.magnitude
			}
		}
		yaw := yawNoise
		if v > 1 {
			yaw += lateral / v
		}
		out[i] = Sample{T: round(t, 1), Speed: round(v, 3), Accel: round(accel, 3), YawRate: round(yaw, 4)}
		v = max(v+accel*dt, 0)
	}
	return out
}

// weight is a manoeuvre's share at time x after its start: a linear ramp up, the hold,
// a ramp down.
func weight(x, hold, ramp float64) float64 {
	switch {
	case x <= 0 || x >= hold+2*ramp:
		return 0
	case x < ramp:
		return x / ramp
	case x <= ramp+hold:
		return 1
	default:
		return (hold + 2*ramp - x) / ramp
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}
