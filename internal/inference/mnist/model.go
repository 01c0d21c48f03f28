package mnist

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Model is the trained network: W1 is Hidden rows of Pixels weights, W2 Classes rows of
// Hidden weights.
type Model struct {
	Hidden int
	W1, B1 []float32
	W2, B2 []float32
}

// Config is what training depends on besides the data; with CodeVersion it keys the
// cached weights of `make images`.
type Config struct {
	Hidden    int     `json:"hidden"`
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batchSize"`
	LearnRate float64 `json:"learnRate"`
	// Decay multiplies the learning rate after each epoch.
	Decay    float64 `json:"decay"`
	Momentum float64 `json:"momentum"`
	Seed     uint64  `json:"seed"`
	// Limit trains on the first Limit images only (0: all), for quick tests.
	Limit int `json:"limit,omitempty"`
}

// CodeVersion changes whenever training's code changes what it produces, so that cached
// weights of an older trainer are not reused.
const CodeVersion = 1

// DefaultConfig is the classifier image's training: about 98 % on t10k.
func DefaultConfig() Config {
	return Config{Hidden: 128, Epochs: 8, BatchSize: 32, LearnRate: 0.1, Decay: 0.75, Momentum: 0.9, Seed: 14}
}

func (c Config) validate() error {
	switch {
	case c.Hidden < 1 || c.Hidden > maxHidden:
		return fmt.Errorf("hidden units %d: want 1..%d", c.Hidden, maxHidden)
	case c.Epochs < 1, c.BatchSize < 1:
		return fmt.Errorf("epochs %d, batch size %d: want ≥ 1", c.Epochs, c.BatchSize)
	case !(c.LearnRate > 0) || !(c.Decay > 0) || !(c.Momentum >= 0 && c.Momentum < 1) || c.Limit < 0:
		return fmt.Errorf("learning rate %g, decay %g, momentum %g, limit %d: out of range", c.LearnRate, c.Decay, c.Momentum, c.Limit)
	}
	return nil
}

// maxHidden bounds the hidden layer, so that a weights file cannot ask for gigabytes.
const maxHidden = 4096

// Train fits a model to train. It runs on one goroutine and draws every random number
// (initial weights, each epoch's order) from one PCG stream seeded by c.Seed. It stops
// with ctx's error when ctx ends.
func Train(ctx context.Context, train *Set, c Config) (*Model, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	n := train.Len()
	if c.Limit > 0 && c.Limit < n {
		n = c.Limit
	}
	if n == 0 {
		return nil, fmt.Errorf("training: no images")
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x6d6e697374))
	h := c.Hidden
	m := &Model{Hidden: h, W1: make([]float32, h*Pixels), B1: make([]float32, h),
		W2: make([]float32, Classes*h), B2: make([]float32, Classes)}
	// He initialisation for the ReLU layer, Glorot-like for the output.
	for i := range m.W1 {
		m.W1[i] = float32(rng.NormFloat64() * math.Sqrt(2.0/Pixels))
	}
	for i := range m.W2 {
		m.W2[i] = float32(rng.NormFloat64() * math.Sqrt(1.0/float64(h)))
	}
	// Gradients of a batch and the momentum velocities.
	gW1, gB1 := make([]float32, len(m.W1)), make([]float32, h)
	gW2, gB2 := make([]float32, len(m.W2)), make([]float32, Classes)
	vW1, vB1 := make([]float32, len(m.W1)), make([]float32, h)
	vW2, vB2 := make([]float32, len(m.W2)), make([]float32, Classes)
	x := make([]float32, Pixels)
	nz := make([]int, 0, Pixels)
	hid := make([]float32, h)
	dh := make([]float32, h)
	var out [Classes]float32
	lr := c.LearnRate
	for range c.Epochs {
		order := rng.Perm(n)
		for start := 0; start < n; start += c.BatchSize {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("training: %w", err)
			}
			batch := order[start:min(start+c.BatchSize, n)]
			for _, idx := range batch {
				nz = input(&train.Images[idx], x, nz)
				m.forward(x, nz, hid, &out)
				softmax(&out)
				// Cross-entropy's gradient at the logits is p - onehot.
				out[train.Labels[idx]]--
				clear(dh)
				for k := range Classes {
					g := out[k]
					gB2[k] += g
					row := gW2[k*h : (k+1)*h]
					w := m.W2[k*h : (k+1)*h]
					for j := range h {
						row[j] += g * hid[j]
						dh[j] += g * w[j]
					}
				}
				for j := range h {
					if hid[j] <= 0 {
						continue
					}
					g := dh[j]
					gB1[j] += g
					row := gW1[j*Pixels : (j+1)*Pixels]
					// MNIST is mostly background: only lit pixels have a gradient.
					for _, p := range nz {
						row[p] += g * x[p]
					}
				}
			}
			scale := float32(lr / float64(len(batch)))
			mom := float32(c.Momentum)
			step(m.W1, gW1, vW1, scale, mom)
			step(m.B1, gB1, vB1, scale, mom)
			step(m.W2, gW2, vW2, scale, mom)
			step(m.B2, gB2, vB2, scale, mom)
		}
		lr *= c.Decay
	}
	return m, nil
}

// step applies one momentum update and clears the gradient.
func step(w, g, v []float32, scale, mom float32) {
	for i := range w {
		v[i] = mom*v[i] - scale*g[i]
		w[i] += v[i]
		g[i] = 0
	}
}

// input scales an image to [0,1] into x and returns the indices of its lit pixels.
func input(img *[Pixels]uint8, x []float32, nz []int) []int {
	nz = nz[:0]
	for i, p := range img {
		x[i] = float32(p) / 255
		if p != 0 {
			nz = append(nz, i)
		}
	}
	return nz
}

// forward computes the hidden activations and the logits.
func (m *Model) forward(x []float32, nz []int, hid []float32, out *[Classes]float32) {
	h := m.Hidden
	for j := range h {
		s := m.B1[j]
		row := m.W1[j*Pixels : (j+1)*Pixels]
		for _, p := range nz {
			s += row[p] * x[p]
		}
		hid[j] = max(s, 0)
	}
	for k := range Classes {
		s := m.B2[k]
		row := m.W2[k*h : (k+1)*h]
		for j := range h {
			s += row[j] * hid[j]
		}
		out[k] = s
	}
}

func softmax(v *[Classes]float32) {
	top := v[0]
	for _, x := range v {
		top = max(top, x)
	}
	var sum float64
	for i, x := range v {
		e := math.Exp(float64(x - top))
		v[i] = float32(e)
		sum += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}

// Predict classifies a 28×28 image (row-major, 0 the background, 255 the ink): the digit
// and the probability of each digit.
func (m *Model) Predict(pixels [Pixels]uint8) (digit int, probs [Classes]float32) {
	x := make([]float32, Pixels)
	nz := input(&pixels, x, make([]int, 0, Pixels))
	m.forward(x, nz, make([]float32, m.Hidden), &probs)
	softmax(&probs)
	for k, p := range probs {
		if p > probs[digit] {
			digit = k
		}
	}
	return digit, probs
}

// Accuracy is the fraction of s that m classifies right.
func (m *Model) Accuracy(s *Set) float64 {
	if s.Len() == 0 {
		return 0
	}
	right := 0
	for i := range s.Labels {
		if d, _ := m.Predict(s.Images[i]); d == int(s.Labels[i]) {
			right++
		}
	}
	return float64(right) / float64(s.Len())
}
