package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// buildPause compiles the pause program for both platforms into dir and builds its image.
func buildPause(t *testing.T, dir string, ca []byte) Built {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Repository: Pause, Tag: PauseTag, Command: "pause", Binaries: map[string]string{}}
	for _, platform := range DefaultPlatforms {
		out := filepath.Join(dir, BinaryName("./internal/images/pause", platform))
		if err := GoBuild(context.Background(), root, "./internal/images/pause", platform, out); err != nil {
			t.Fatal(err)
		}
		spec.Binaries[platform] = out
	}
	b, err := Build(spec, ca)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBuildIsReproducible: two builds from the same sources, in different directories, give
// the same digests, in memory and through an OCI layout; another CA bundle gives another.
func TestBuildIsReproducible(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	first, second := buildPause(t, t.TempDir(), ca), buildPause(t, t.TempDir(), ca)
	d1, err := first.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := second.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("same inputs, different digests: %s and %s", d1, d2)
	}

	layouts := []string{t.TempDir(), t.TempDir()}
	for i, b := range []Built{first, second} {
		if err := WriteLayout(layouts[i], []Built{b}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range layouts {
		read, err := ReadLayout(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(read) != 1 || read[0].Ref != "edgemigrate.local/pause:3.10" {
			t.Fatalf("layout %s holds %v", dir, read)
		}
		if d, err := read[0].Digest(); err != nil || d != d1 {
			t.Errorf("layout %s: digest %s (%v), want %s", dir, d, err, d1)
		}
	}

	other := buildPause(t, t.TempDir(), append([]byte("# another bundle\n"), ca...))
	if d3, err := other.Digest(); err != nil || d3 == d1 {
		t.Errorf("another CA bundle gave digest %s (%v), want one different from %s", d3, err, d1)
	}
}

// TestImageContents: each platform's image runs its binary as the nonroot user, with the
// CA bundle, a passwd naming the user, and files in sorted order with fixed times.
func TestImageContents(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n")
	b := buildPause(t, t.TempDir(), ca)
	if b.Index == nil {
		t.Fatal("two platforms gave no index")
	}
	m, err := b.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var archs []string
	for _, d := range m.Manifests {
		archs = append(archs, d.Platform.Architecture)
		img, err := b.Index.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != d.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s: config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
		}
		if cfg.Config.User != "65532:65532" || !cfg.Created.IsZero() && cfg.Created.Unix() != 0 {
			t.Errorf("%s: user %q created %s", d.Platform, cfg.Config.User, cfg.Created)
		}
		if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/usr/local/bin/pause" {
			t.Errorf("%s: entrypoint %q", d.Platform, got)
		}
		files := imageFiles(t, img)
		if string(files["etc/ssl/certs/ca-certificates.crt"]) != string(ca) {
			t.Errorf("%s: CA bundle not in the image", d.Platform)
		}
		if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd lacks the nonroot user: %q", d.Platform, files["etc/passwd"])
		}
		if len(files["usr/local/bin/pause"]) == 0 {
			t.Errorf("%s: no binary", d.Platform)
		}
	}
	if strings.Join(archs, ",") != "amd64,arm64" {
		t.Errorf("index platforms %v, want amd64 and arm64", archs)
	}
}

// imageFiles reads an image's flattened file system, checking each layer's entries are
// sorted and dated at the epoch.
func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		prev := ""
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name < prev {
				t.Errorf("layer entries out of order: %s after %s", h.Name, prev)
			}
			if h.ModTime.Unix() != 0 {
				t.Errorf("%s dated %s", h.Name, h.ModTime)
			}
			prev = h.Name
		}
		rc.Close()
	}
	files := map[string][]byte{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
	return files
}

func TestRename(t *testing.T) {
	tests := []struct{ ref, repo, want, err string }{
		{"edgemigrate.local/edgemigrate:0.1.0", "ghcr.io/me", "ghcr.io/me/edgemigrate:0.1.0", ""},
		{"edgemigrate.local/pause:3.10", "127.0.0.1:5000/", "127.0.0.1:5000/pause:3.10", ""},
		{"docker.io/library/busybox:1", "ghcr.io/me", "", "not under edgemigrate.local"},
	}
	for _, tt := range tests {
		got, err := Rename(tt.ref, tt.repo)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Rename(%q): error %v, want %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Rename(%q, %q) = %q, %v; want %q", tt.ref, tt.repo, got, err, tt.want)
		}
	}
}

func TestBuildRejectsBadSpec(t *testing.T) {
	ca := []byte("x")
	if _, err := Build(Spec{Repository: "x", Tag: "1", Command: "x"}, ca); err == nil {
		t.Error("an image without binaries was built")
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Spec{Repository: "x", Tag: "1", Command: "x", Binaries: map[string]string{"not a platform/": bin}}, ca); err == nil {
		t.Error("a bad platform was accepted")
	}
	if _, err := Build(Spec{Repository: "Bad Name", Tag: "1", Command: "x", Binaries: map[string]string{"linux/amd64": bin}}, ca); err == nil {
		t.Error("a bad repository name was accepted")
	}
	if _, err := Build(Spec{Repository: "x", Tag: "1", Command: "x", Binaries: map[string]string{"linux/amd64": bin}}, nil); err == nil {
		t.Error("an empty CA bundle was accepted")
	}
}

// TestImageFiles: a spec's files land in the image with their directories, from data or a
// host file; bad paths and a file given twice are errors.
func TestImageFiles(t *testing.T) {
	dir := t.TempDir()
	bin, weights := filepath.Join(dir, "bin"), filepath.Join(dir, "weights")
	if err := os.WriteFile(bin, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, []byte("trained"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Repository: "x", Tag: "1", Command: "x", Binaries: map[string]string{"linux/amd64": bin},
		Files: []File{{Path: "/model/mnist.weights", Source: weights}, {Path: "/model/sub/note", Data: []byte("hi")}}}
	b, err := Build(spec, []byte("ca"))
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, b.Image)
	if string(files["model/mnist.weights"]) != "trained" || string(files["model/sub/note"]) != "hi" {
		t.Errorf("files in the image: weights %q, note %q", files["model/mnist.weights"], files["model/sub/note"])
	}
	if _, ok := files["model"]; !ok {
		t.Error("no /model directory in the image")
	}
	if len(files["usr/local/bin/x"]) == 0 {
		t.Error("the binary is missing beside the files")
	}
	for name, f := range map[string][]File{
		"relative":     {{Path: "model/w", Data: []byte("x")}},
		"unclean":      {{Path: "/model/../etc/passwd", Data: []byte("x")}},
		"root":         {{Path: "/", Data: []byte("x")}},
		"missing":      {{Path: "/model/w", Source: filepath.Join(dir, "absent")}},
		"both":         {{Path: "/model/w", Source: weights, Data: []byte("x")}},
		"twice":        {{Path: "/model/w", Data: []byte("x")}, {Path: "/model/w", Data: []byte("y")}},
		"binary again": {{Path: "/usr/local/bin/x", Data: []byte("x")}},
	} {
		spec.Files = f
		if _, err := Build(spec, []byte("ca")); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}
