package mnist

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

// The weights file: magic, format version, the layer sizes (uint32, little endian), then
// W1, B1, W2, B2 as little-endian float32, then the SHA-256 of everything before it.
var magic = [8]byte{'E', 'M', 'M', 'N', 'I', 'S', 'T', 0}

// FormatVersion is the weights file's layout; Decode accepts only it.
const FormatVersion = 1

const headerSize = len(magic) + 4*4

// Encode serialises m.
func (m *Model) Encode() []byte {
	var b bytes.Buffer
	b.Write(magic[:])
	for _, v := range []uint32{FormatVersion, Pixels, uint32(m.Hidden), Classes} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	for _, part := range [][]float32{m.W1, m.B1, m.W2, m.B2} {
		_ = binary.Write(&b, binary.LittleEndian, part)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// Decode parses a weights file strictly: the right magic, version and sizes, exactly the
// bytes they need, finite weights and a matching checksum; anything else is an error.
func Decode(data []byte) (*Model, error) {
	if len(data) < headerSize+sha256.Size {
		return nil, fmt.Errorf("weights: %d bytes, too short for a header", len(data))
	}
	if !bytes.Equal(data[:len(magic)], magic[:]) {
		return nil, fmt.Errorf("weights: not an MNIST weights file (bad magic)")
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(data[len(magic)+4*i:]) }
	version, inputs, hidden, classes := u(0), u(1), u(2), u(3)
	if version != FormatVersion {
		return nil, fmt.Errorf("weights: format version %d, this program reads %d", version, FormatVersion)
	}
	if inputs != Pixels || classes != Classes || hidden < 1 || hidden > maxHidden {
		return nil, fmt.Errorf("weights: layers %d→%d→%d, want %d→1..%d→%d", inputs, hidden, classes, Pixels, maxHidden, Classes)
	}
	h := int(hidden)
	floats := h*Pixels + h + Classes*h + Classes
	if want := headerSize + 4*floats + sha256.Size; len(data) != want {
		return nil, fmt.Errorf("weights: %d bytes, want %d for %d hidden units", len(data), want, h)
	}
	body := data[:len(data)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("weights: checksum mismatch (corrupt file)")
	}
	all := make([]float32, floats)
	for i := range all {
		v := math.Float32frombits(binary.LittleEndian.Uint32(body[headerSize+4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("weights: value %d is %v", i, v)
		}
		all[i] = v
	}
	m := &Model{Hidden: h}
	m.W1, all = all[:h*Pixels], all[h*Pixels:]
	m.B1, all = all[:h], all[h:]
	m.W2, all = all[:Classes*h], all[Classes*h:]
	m.B2 = all
	return m, nil
}
