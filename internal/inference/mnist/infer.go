package mnist

import (
	"context"
	"fmt"

	"github.com/edgemigrate/edgemigrate/internal/inference/service"
)

// Request is the classifier's POST /infer body: 784 grey levels 0..255, 28×28 row-major,
// 0 the background (MNIST's convention).
type Request struct {
	Pixels []int `json:"pixels"`
}

// Answer is the classifier's answer: the digit, its probability, every digit's, and where
// it was computed.
type Answer struct {
	Digit         int              `json:"digit"`
	Confidence    float32          `json:"confidence"`
	Probabilities [Classes]float32 `json:"probabilities"`
	service.Identity
}

// NewRequest is the request that sends img.
func NewRequest(img [Pixels]uint8) Request {
	r := Request{Pixels: make([]int, Pixels)}
	for i, p := range img {
		r.Pixels[i] = int(p)
	}
	return r
}

// ParseRequest decodes and checks a request's body.
func ParseRequest(body []byte) ([Pixels]uint8, error) {
	var img [Pixels]uint8
	var r Request
	if err := service.DecodeJSON(body, &r); err != nil {
		return img, err
	}
	if len(r.Pixels) != Pixels {
		return img, service.BadInput(fmt.Errorf("pixels: %d values, want %d (28×28 row-major, 0..255)", len(r.Pixels), Pixels))
	}
	for i, p := range r.Pixels {
		if p < 0 || p > 255 {
			return img, service.BadInput(fmt.Errorf("pixels[%d] is %d, want 0..255", i, p))
		}
		img[i] = uint8(p)
	}
	return img, nil
}

// Infer is the classifier service's service.InferFunc.
func (m *Model) Infer(_ context.Context, body []byte, id service.Identity) (any, error) {
	img, err := ParseRequest(body)
	if err != nil {
		return nil, err
	}
	digit, probs := m.Predict(img)
	return Answer{Digit: digit, Confidence: probs[digit], Probabilities: probs, Identity: id}, nil
}
