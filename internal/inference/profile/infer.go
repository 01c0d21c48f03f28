package profile

import (
	"context"

	"github.com/edgemigrate/edgemigrate/internal/inference/serve"
)

// Request is the profiler's POST /infer body.
type Request struct {
	Samples []Sample `json:"samples"`
}

// Answer is the profiler's answer and where it was computed.
type Answer struct {
	Result
	serve.Identity
}

// ParseRequest decodes and validates a request's body; every error is a serve.BadInput.
func ParseRequest(body []byte) ([]Sample, error) {
	var r Request
	if err := serve.DecodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := Validate(r.Samples); err != nil {
		return nil, serve.BadInput(err)
	}
	return r.Samples, nil
}

// Infer is the profiler service's serve.InferFunc.
func Infer(_ context.Context, body []byte, id serve.Identity) (any, error) {
	samples, err := ParseRequest(body)
	if err != nil {
		return nil, err
	}
	r, err := Analyze(samples)
	if err != nil {
		return nil, serve.BadInput(err)
	}
	return Answer{Result: r, Identity: id}, nil
}
