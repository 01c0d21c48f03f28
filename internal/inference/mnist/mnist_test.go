package mnist

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgemigrate/edgemigrate/internal/inference/service"
	"github.com/edgemigrate/edgemigrate/localcluster"
)

// readmeAccuracy is the held-out accuracy the README states for the weights `make images`
// trains (98.0 %), less a margin for another machine's rounding.
const readmeAccuracy = 0.975

var (
	dataOnce  sync.Once
	dataDir   string
	dataErr   error
	trainSet  *Set
	testSet   *Set
	loadError error
)

// data loads both splits once for the package's tests.
func data(t testing.TB) (dir string, train, test *Set) {
	t.Helper()
	dataOnce.Do(func() {
		dataDir, dataErr = DataDir(context.Background(), ".")
		if dataErr != nil {
			return
		}
		if trainSet, loadError = LoadTrain(dataDir); loadError == nil {
			testSet, loadError = LoadTest(dataDir)
		}
	})
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	if loadError != nil {
		t.Fatal(loadError)
	}
	return dataDir, trainSet, testSet
}

// subset is DefaultConfig trained smaller and on the first limit images only.
func subset(hidden, epochs, limit int) Config {
	c := DefaultConfig()
	c.Hidden, c.Epochs, c.Limit = hidden, epochs, limit
	return c
}

// quickConfig learns in about a second; tinyConfig is for tests of anything but accuracy.
func quickConfig() Config { return subset(64, 2, 10000) }
func tinyConfig() Config  { return subset(16, 1, 2000) }

func TestSplits(t *testing.T) {
	_, train, test := data(t)
	if train.Len() != 60000 || test.Len() != 10000 {
		t.Fatalf("train %d, test %d images: want 60000 and 10000", train.Len(), test.Len())
	}
	var counts [Classes]int
	for _, l := range test.Labels {
		counts[l]++
	}
	for d, n := range counts {
		if n < 800 {
			t.Errorf("t10k has %d images of %d", n, d)
		}
	}
}

func TestDataDirError(t *testing.T) {
	_, err := DataDir(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), Module) {
		t.Fatalf("DataDir outside the module: %v, want an error naming %s", err, Module)
	}
}

// TestAccuracy: the weights `make images` cached reach the README's figure on t10k; without
// them (or with -short), a quick training on a subset learns.
func TestAccuracy(t *testing.T) {
	dir, train, test := data(t)
	if !testing.Short() {
		key, err := CacheKey(dir, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		// Under make test, EDGEMIGRATE_IMAGES names the layout `make images` just built, and
		// its weights must be beside it: their absence is a failure, not a quicker check.
		weightsDir, required := "", false
		if images := os.Getenv(localcluster.ImagesDirEnv); images != "" {
			weightsDir, required = filepath.Join(filepath.Dir(images), "images-build"), true
		} else if root, err := repoRoot(); err == nil {
			weightsDir = filepath.Join(root, "bin", "images-build")
		}
		if weightsDir != "" {
			path := CachePath(weightsDir, key)
			raw, err := os.ReadFile(path)
			switch {
			case err == nil:
				m, err := Decode(raw)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if acc := m.Accuracy(test); acc < readmeAccuracy {
					t.Fatalf("weights %s: %.2f%% on t10k, the README states ≥ %.1f%%", path, 100*acc, 100*readmeAccuracy)
				} else {
					t.Logf("weights %s: %.2f%% on t10k", path, 100*acc)
				}
				return
			case required:
				t.Fatalf("no weights at %s, beside %s=%s: `make images` trains them: %v", path, localcluster.ImagesDirEnv, os.Getenv(localcluster.ImagesDirEnv), err)
			}
			t.Logf("no weights at %s (make images trains them): checking a quick training instead", path)
		}
	}
	m, err := Train(context.Background(), train, quickConfig())
	if err != nil {
		t.Fatal(err)
	}
	if acc := m.Accuracy(test); acc < 0.90 {
		t.Fatalf("quick training: %.2f%% on t10k, want ≥ 90%%", 100*acc)
	} else {
		t.Logf("quick training (%d images, %d hidden, %d epochs): %.2f%% on t10k", quickConfig().Limit, quickConfig().Hidden, quickConfig().Epochs, 100*acc)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", os.ErrNotExist
		}
		dir = filepath.Dir(dir)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	_, train, _ := data(t)
	a, err := Train(context.Background(), train, tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), train, tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Encode(), b.Encode()) {
		t.Fatal("two trainings with the same configuration gave different weights")
	}
	other := tinyConfig()
	other.Seed++
	c, err := Train(context.Background(), train, other)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Encode(), c.Encode()) {
		t.Fatal("another seed gave the same weights")
	}
}

func TestTrainRejectsBadConfig(t *testing.T) {
	_, train, _ := data(t)
	for name, mutate := range map[string]func(*Config){
		"no hidden":      func(c *Config) { c.Hidden = 0 },
		"huge hidden":    func(c *Config) { c.Hidden = maxHidden + 1 },
		"no epochs":      func(c *Config) { c.Epochs = 0 },
		"zero rate":      func(c *Config) { c.LearnRate = 0 },
		"momentum 1":     func(c *Config) { c.Momentum = 1 },
		"negative limit": func(c *Config) { c.Limit = -1 },
	} {
		c := tinyConfig()
		mutate(&c)
		if _, err := Train(context.Background(), train, c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Train(context.Background(), &Set{}, tinyConfig()); err == nil {
		t.Error("empty set: no error")
	}
}

func TestTrainStopsWithTheContext(t *testing.T) {
	_, train, _ := data(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, train, tinyConfig()); !errors.Is(err, context.Canceled) {
		t.Fatalf("training with an ended context: %v, want context.Canceled", err)
	}
}

func TestWeightsRoundTrip(t *testing.T) {
	_, train, test := data(t)
	m, err := Train(context.Background(), train, tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	enc := m.Encode()
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) {
		t.Fatal("decode then encode changed the weights")
	}
	for i := range 20 {
		d1, p1 := m.Predict(test.Images[i])
		d2, p2 := got.Predict(test.Images[i])
		if d1 != d2 || p1 != p2 {
			t.Fatalf("image %d: %d %v before, %d %v after a round trip", i, d1, p1, d2, p2)
		}
		var sum float32
		for _, p := range p1 {
			sum += p
		}
		if sum < 0.999 || sum > 1.001 || p1[d1] < p1[(d1+1)%Classes] {
			t.Fatalf("image %d: probabilities %v sum to %v, digit %d", i, p1, sum, d1)
		}
	}

	bad := map[string][]byte{
		"empty":     nil,
		"truncated": enc[:len(enc)-1],
		"longer":    append(bytes.Clone(enc), 0),
		"flipped":   flip(enc, headerSize+100),
		"magic":     flip(enc, 0),
		"version":   withHeader(enc, 0, 2),
		"inputs":    withHeader(enc, 1, 783),
		"hidden":    withHeader(enc, 2, maxHidden+1),
		"classes":   withHeader(enc, 3, 11),
	}
	for name, data := range bad {
		if _, err := Decode(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x40
	return b
}

// withHeader sets header field i; Decode checks the header before the checksum.
func withHeader(b []byte, i int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(magic)+4*i:], v)
	return b
}

func TestTrainCached(t *testing.T) {
	dir, _, _ := data(t)
	cache := t.TempDir()
	c := tinyConfig()
	first, err := TrainCached(context.Background(), dir, cache, c)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached || first.Accuracy < 0.5 {
		t.Fatalf("first run: cached %v, accuracy %.3f", first.Cached, first.Accuracy)
	}
	second, err := TrainCached(context.Background(), dir, cache, c)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cached || second.Path != first.Path || !bytes.Equal(second.Model.Encode(), first.Model.Encode()) {
		t.Fatalf("second run: cached %v at %s (first %s)", second.Cached, second.Path, first.Path)
	}
	c.Seed++
	if k1, _ := CacheKey(dir, tinyConfig()); k1 == mustKey(t, dir, c) {
		t.Fatal("another configuration has the same cache key")
	}
	if err := os.WriteFile(first.Path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := TrainCached(context.Background(), dir, cache, tinyConfig()); err == nil {
		t.Fatal("corrupt cached weights were used")
	}
}

func mustKey(t *testing.T, dir string, c Config) string {
	k, err := CacheKey(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func FuzzDecode(f *testing.F) {
	m := &Model{Hidden: 1, W1: make([]float32, Pixels), B1: make([]float32, 1), W2: make([]float32, Classes), B2: make([]float32, Classes)}
	f.Add(m.Encode())
	f.Add([]byte("EMMNIST\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		if !bytes.Equal(got.Encode(), data) {
			t.Fatal("accepted input does not re-encode to itself")
		}
		got.Predict([Pixels]uint8{})
	})
}

func TestInfer(t *testing.T) {
	_, train, test := data(t)
	m, err := Train(context.Background(), train, tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(NewRequest(test.Images[0]))
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Infer(context.Background(), body, service.Identity{Cluster: "edge-b", Pod: "detector-1", Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	a := out.(Answer)
	digit, probs := m.Predict(test.Images[0])
	if a.Digit != digit || a.Probabilities != probs || a.Confidence != probs[digit] || a.Cluster != "edge-b" {
		t.Errorf("answer %+v, want digit %d with %v", a, digit, probs)
	}
	raw, _ := json.Marshal(a)
	for _, field := range []string{`"digit":`, `"confidence":`, `"probabilities":[`, `"cluster":"edge-b"`, `"pod":"detector-1"`, `"node":"n"`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("answer %s lacks %s", raw, field)
		}
	}
	short := `{"pixels":[` + strings.Repeat("0,", Pixels-2) + `0]}`
	high := `{"pixels":[` + strings.Repeat("0,", Pixels-1) + `256]}`
	for name, bad := range map[string]string{
		"783 pixels": short, "256": high, "no pixels": `{}`, "not JSON": `pixels`, "base64": `{"pixels":"AAAA"}`,
		"unknown field": `{"pixels":[],"colour":1}`,
	} {
		if _, err := m.Infer(context.Background(), []byte(bad), service.Identity{}); err == nil || !service.IsBadInput(err) {
			t.Errorf("%s: %v, want a bad-input error", name, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	good, _ := json.Marshal(NewRequest([Pixels]uint8{3: 255}))
	f.Add(good)
	f.Add([]byte(`{"pixels":[-1]}`))
	f.Add([]byte(`{"pixels":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ParseRequest(data)
		if err != nil {
			if !service.IsBadInput(err) {
				t.Fatalf("error %v is not a bad-input error", err)
			}
			return
		}
		var back Request
		if json.Unmarshal(data, &back) != nil || len(back.Pixels) != Pixels || NewRequest(img).Pixels[0] != back.Pixels[0] {
			t.Fatalf("accepted %q as %v", data, img[:4])
		}
	})
}
