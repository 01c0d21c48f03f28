package locator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/edgemigrate/edgemigrate/geo"
)

// locationBody is the body of a location report. Pointers tell a missing coordinate from 0.
type locationBody struct {
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
}

// decodeLocation reads exactly one JSON object {"lat":..,"lon":..} with both coordinates
// in range and nothing else. Read errors (such as a body over the limit) are returned
// wrapped, so the caller can tell them from malformed input.
func decodeLocation(r io.Reader) (geo.Point, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return geo.Point{}, fmt.Errorf("reading location: %w", err)
	}
	return parseLocation(data)
}

var errLocationShape = errors.New(`location must be a JSON object {"lat": <degrees>, "lon": <degrees>}`)

func parseLocation(data []byte) (geo.Point, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return geo.Point{}, fmt.Errorf("empty body: %w", errLocationShape)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var body locationBody
	if err := dec.Decode(&body); err != nil {
		return geo.Point{}, fmt.Errorf("%w: %v", errLocationShape, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return geo.Point{}, fmt.Errorf("%w: unexpected data after the object", errLocationShape)
	}
	switch {
	case body.Lat == nil && body.Lon == nil:
		return geo.Point{}, fmt.Errorf("%w: lat and lon are missing", errLocationShape)
	case body.Lat == nil:
		return geo.Point{}, fmt.Errorf("%w: lat is missing", errLocationShape)
	case body.Lon == nil:
		return geo.Point{}, fmt.Errorf("%w: lon is missing", errLocationShape)
	}
	p := geo.Point{Lat: *body.Lat, Lon: *body.Lon}
	if err := p.Validate(); err != nil {
		return geo.Point{}, fmt.Errorf("invalid location: %w", err)
	}
	return p, nil
}
