package profile

import (
	"context"

	"github.com/edgemigrate/edgemigrate/internal/inference/service"
)

// Request is the profiler's POST /infer body.
type Request struct {
	Samples []Sample `json:"samples"`
}

// Answer is the profiler's answer and where it was computed.
type Answer struct {
	Result
	service.Identity
}

// ParseRequest decodes and validates a request's body; every error is a service.BadInput.
func ParseRequest(body []byte) ([]Sample, error) {
	var r Request
	if err := service.DecodeJSON(body, &r); err != nil {
		return nil, err
	}
	if err := Validate(r.Samples); err != nil {
		return nil, service.BadInput(err)
	}
	return r.Samples, nil
}

// Infer is the profiler service's service.InferFunc.
func Infer(_ context.Context, body []byte, id service.Identity) (any, error) {
	samples, err := ParseRequest(body)
	if err != nil {
		return nil, err
	}
	r, err := Analyze(samples)
	if err != nil {
		return nil, service.BadInput(err)
	}
	return Answer{Result: r, Identity: id}, nil
}
