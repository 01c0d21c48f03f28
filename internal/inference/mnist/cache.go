package mnist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ImagePath is where the classifier image holds the weights `make images` trained.
const ImagePath = "/model/mnist.weights"

// Trained is what TrainCached reports.
type Trained struct {
	Model *Model
	// Path is the cached weights file.
	Path string
	// Cached says the weights were reused, not trained now.
	Cached bool
	// TrainTime is how long training took (0 when cached).
	TrainTime time.Duration
	// Accuracy is measured on the held-out t10k split, now.
	Accuracy float64
}

// CacheKey hashes what the weights depend on: the four data files, c and CodeVersion.
func CacheKey(dataDir string, c Config) (string, error) {
	h := sha256.New()
	cfg, err := json.Marshal(struct {
		Config
		Code int `json:"code"`
	}{c, CodeVersion})
	if err != nil {
		return "", err
	}
	h.Write(cfg)
	for _, name := range []string{TrainImages, TrainLabels, TestImages, TestLabels} {
		f, err := os.Open(filepath.Join(dataDir, name))
		if err != nil {
			return "", fmt.Errorf("hashing the MNIST files: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("hashing %s: %w", name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// CachePath is where TrainCached keeps the weights of key under dir.
func CachePath(dir, key string) string { return filepath.Join(dir, "mnist-"+key+".weights") }

// TrainCached returns the weights of c trained on dataDir's training split, from cacheDir
// when a previous run left them there, else trained now and written there; either way it
// measures their accuracy on the t10k split.
func TrainCached(ctx context.Context, dataDir, cacheDir string, c Config) (Trained, error) {
	key, err := CacheKey(dataDir, c)
	if err != nil {
		return Trained{}, err
	}
	t := Trained{Path: CachePath(cacheDir, key)}
	if data, err := os.ReadFile(t.Path); err == nil {
		if t.Model, err = Decode(data); err != nil {
			return Trained{}, fmt.Errorf("cached weights %s: %w (delete the file to retrain)", t.Path, err)
		}
		t.Cached = true
	} else if !os.IsNotExist(err) {
		return Trained{}, fmt.Errorf("reading cached weights: %w", err)
	}
	if t.Model == nil {
		train, err := LoadTrain(dataDir)
		if err != nil {
			return Trained{}, err
		}
		start := time.Now()
		if t.Model, err = Train(ctx, train, c); err != nil {
			return Trained{}, err
		}
		t.TrainTime = time.Since(start)
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return Trained{}, fmt.Errorf("caching weights: %w", err)
		}
		// Written whole then renamed, so that an interrupted build leaves no half file.
		tmp := t.Path + ".tmp"
		if err := os.WriteFile(tmp, t.Model.Encode(), 0o644); err != nil {
			return Trained{}, fmt.Errorf("caching weights: %w", err)
		}
		if err := os.Rename(tmp, t.Path); err != nil {
			return Trained{}, fmt.Errorf("caching weights: %w", err)
		}
	}
	test, err := LoadTest(dataDir)
	if err != nil {
		return Trained{}, err
	}
	t.Accuracy = t.Model.Accuracy(test)
	return t, nil
}
