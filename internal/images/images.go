// Package images builds the project's OCI images without a container engine: each is a
// static binary on a minimal base the project assembles itself (a non-root user and the CA
// certificates), written reproducibly (fixed timestamps, sorted entries), so the same inputs
// give the same digest. `make images` writes them to an OCI layout; the local clusters'
// registry serves them to real nodes.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is the registry host of the images `make images` builds. It resolves nowhere:
// the local clusters' containerd maps it to their own registry, and `make images-push`
// renames the images into a registry the user names.
const Registry = "edgemigrate.local"

// Repositories of the images, under Registry or the user's IMAGE_REPO.
const (
	Edgemigrate   = "edgemigrate"
	KubeScheduler = "kube-scheduler"
	// EdgemigrateScheduler is kube-scheduler with the Jetson plugin (the chart's plugin mode).
	EdgemigrateScheduler = "edgemigrate-scheduler"
	Pause                = "pause"
	TestService          = "testservice"
	// Classifier is the MNIST digit classifier (internal/images/classifier).
	Classifier = "classifier"
	// Profiler is the driver-behaviour profiler (internal/images/profiler).
	Profiler = "profiler"
)

// PauseTag is the pause image's tag, the version of the upstream pause it stands for.
const PauseTag = "3.10"

// NonRoot is the user every image runs as, the same uid as distroless's "nonroot" and the
// chart's runAsUser.
const NonRoot = 65532

// RefAnnotation names an image in an OCI layout's index, as the OCI image spec defines.
const RefAnnotation = "org.opencontainers.image.ref.name"

// epoch is every file's and image's timestamp, so that builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// CABundles are where the base layer's CA certificates are read from, the first that exists:
// Debian's bundle (package ca-certificates), then Fedora's.
var CABundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}

// Spec is one image: a static binary per platform ("linux/amd64": path) run as Entrypoint.
type Spec struct {
	// Repository is the image's name below the registry, e.g. "edgemigrate".
	Repository string
	Tag        string
	// Binaries maps a platform ("linux/arm64") to a static binary, installed as
	// /usr/local/bin/<Command>. More than one platform gives an index.
	Binaries map[string]string
	// Command is the binary's name in the image and its entrypoint.
	Command string
	// NoEntrypoint leaves the entrypoint empty, for images whose users always give a
	// command (kube-scheduler's, as Kubernetes' own image).
	NoEntrypoint bool
	// Files are put in the binary's layer of every platform (the classifier's weights).
	Files []File
}

// File is a file of an image besides its binary: Data, or the host file Source.
type File struct {
	// Path in the image, absolute, e.g. /model/mnist.weights.
	Path   string
	Data   []byte
	Source string
}

// entries returns the layer entries of f, its parent directories first.
func (f File) entries() ([]file, error) {
	clean := path.Clean(f.Path)
	if !path.IsAbs(f.Path) || clean != f.Path || clean == "/" {
		return nil, fmt.Errorf("file %q: want an absolute, clean path", f.Path)
	}
	data := f.Data
	if f.Source != "" {
		if f.Data != nil {
			return nil, fmt.Errorf("file %s: both data and a source", f.Path)
		}
		var err error
		if data, err = os.ReadFile(f.Source); err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Path, err)
		}
	}
	var out []file
	for dir := path.Dir(clean); dir != "/"; dir = path.Dir(dir) {
		out = append(out, file{name: dir[1:] + "/", mode: 0o755})
	}
	slices.Reverse(out)
	return append(out, file{name: clean[1:], mode: 0o644, data: data}), nil
}

// Built is an image or, for several platforms, an index of images.
type Built struct {
	// Ref is Registry/Repository:Tag.
	Ref   string
	Image v1.Image
	Index v1.ImageIndex
}

// Digest is the digest of the image or index, the one a pull by tag resolves to.
func (b Built) Digest() (v1.Hash, error) {
	if b.Index != nil {
		return b.Index.Digest()
	}
	return b.Image.Digest()
}

// Build assembles spec's image on the base with the CA bundle caBundle (PEM).
func Build(spec Spec, caBundle []byte) (Built, error) {
	if len(spec.Binaries) == 0 {
		return Built{}, fmt.Errorf("image %s: no binaries", spec.Repository)
	}
	b := Built{Ref: fmt.Sprintf("%s/%s:%s", Registry, spec.Repository, spec.Tag)}
	if _, err := name.ParseReference(b.Ref, name.StrictValidation); err != nil {
		return Built{}, fmt.Errorf("image name %q: %w", b.Ref, err)
	}
	base, err := baseLayer(caBundle)
	if err != nil {
		return Built{}, err
	}
	var adds []mutate.IndexAddendum
	for _, platform := range slices.Sorted(maps.Keys(spec.Binaries)) {
		p, err := parsePlatform(platform)
		if err != nil {
			return Built{}, fmt.Errorf("image %s: %w", spec.Repository, err)
		}
		img, err := platformImage(spec, *p, spec.Binaries[platform], base)
		if err != nil {
			return Built{}, err
		}
		if len(spec.Binaries) == 1 {
			b.Image = img
			return b, nil
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	b.Index = mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return b, nil
}

// platformImage is the base layer, then a layer with the binary, with a fixed creation time.
func platformImage(spec Spec, p v1.Platform, binary string, base v1.Layer) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("image %s for %s: reading the binary: %w", spec.Repository, p, err)
	}
	files := []file{{name: "usr/local/bin/" + spec.Command, mode: 0o755, data: data}}
	for _, f := range spec.Files {
		entries, err := f.entries()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", spec.Repository, err)
		}
		for _, e := range entries {
			switch {
			case !slices.ContainsFunc(files, func(o file) bool { return o.name == e.name }):
				files = append(files, e)
			case !strings.HasSuffix(e.name, "/"):
				return nil, fmt.Errorf("image %s: file /%s given twice", spec.Repository, e.name)
			}
		}
	}
	bin, err := layer(files)
	if err != nil {
		return nil, fmt.Errorf("image %s for %s: %w", spec.Repository, p, err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, bin)
	if err != nil {
		return nil, fmt.Errorf("image %s for %s: adding layers: %w", spec.Repository, p, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s for %s: reading its configuration: %w", spec.Repository, p, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
	}
	if !spec.NoEntrypoint {
		cfg.Config.Entrypoint = []string{"/usr/local/bin/" + spec.Command}
	}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":  spec.Repository,
		"org.opencontainers.image.source": "https://github.com/edgemigrate/edgemigrate",
	}
	cfg.History = nil
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image %s for %s: setting its configuration: %w", spec.Repository, p, err)
	}
	return img, nil
}

// baseLayer is the minimal root file system every image shares: the directories a program
// expects, a root and a nonroot user, and the CA certificates.
func baseLayer(caBundle []byte) (v1.Layer, error) {
	if len(caBundle) == 0 {
		return nil, fmt.Errorf("base layer: empty CA bundle")
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot)
	files := []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: NonRoot},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
	}
	l, err := layer(files)
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	return l, nil
}

// file is one entry of a layer; a name ending in / is a directory.
type file struct {
	name string
	mode int64
	uid  int
	data []byte
}

// layer writes files, sorted by name, as a tar with fixed times and owners, gzipped.
func layer(files []file) (v1.Layer, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: epoch,
			Typeflag: tar.TypeReg, Size: int64(len(f.data)), Format: tar.FormatPAX,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// ReadCABundle returns the first of CABundles that exists.
func ReadCABundle() ([]byte, error) {
	for _, p := range CABundles {
		data, err := os.ReadFile(p)
		if err == nil {
			return data, nil
		}
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("reading CA bundle: %w", err)
		}
	}
	return nil, fmt.Errorf("no CA bundle at %s: install Debian's ca-certificates", strings.Join(CABundles, " or "))
}

// WriteLayout writes images into a fresh OCI layout at dir (replacing what was there), each
// named in the index by its Ref.
func WriteLayout(dir string, built []Built) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating OCI layout %s: %w", dir, err)
	}
	for _, b := range built {
		opt := layout.WithAnnotations(map[string]string{RefAnnotation: b.Ref})
		if b.Index != nil {
			err = p.AppendIndex(b.Index, opt)
		} else {
			err = p.AppendImage(b.Image, opt)
		}
		if err != nil {
			return fmt.Errorf("writing %s to %s: %w", b.Ref, dir, err)
		}
	}
	return nil
}

// ReadLayout returns the images of an OCI layout written by WriteLayout.
func ReadLayout(dir string) ([]Built, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	var out []Built
	for _, d := range m.Manifests {
		b := Built{Ref: d.Annotations[RefAnnotation]}
		if b.Ref == "" {
			continue
		}
		if d.MediaType.IsIndex() {
			b.Index, err = ii.ImageIndex(d.Digest)
		} else {
			b.Image, err = ii.Image(d.Digest)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s from %s: %w", b.Ref, dir, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Rename returns ref with Registry replaced by repo (a registry host with an optional
// path, e.g. "ghcr.io/me" or "127.0.0.1:5000").
func Rename(ref, repo string) (string, error) {
	rest, ok := strings.CutPrefix(ref, Registry+"/")
	if !ok {
		return "", fmt.Errorf("image %q is not under %s", ref, Registry)
	}
	return strings.TrimSuffix(repo, "/") + "/" + rest, nil
}

// GoBuild compiles the Go package pkg of the module in dir as a static binary for platform
// ("linux/arm64") into out. -trimpath and an empty build id make the binary, and so the
// image, depend only on the sources and the Go version.
func GoBuild(ctx context.Context, dir, pkg, platform, out string, ldflags ...string) error {
	p, err := parsePlatform(platform)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(out), err)
	}
	flags := strings.Join(append([]string{"-s", "-w", "-buildid="}, ldflags...), " ")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", flags, "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=-buildvcs=false")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, platform, err, output)
	}
	return nil
}

// parsePlatform parses os/arch[/variant], both parts required.
func parsePlatform(platform string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", platform, err)
	}
	if p.OS == "" || p.Architecture == "" || strings.ContainsAny(platform, " \t") {
		return nil, fmt.Errorf("platform %q: want os/arch, e.g. linux/arm64", platform)
	}
	return p, nil
}

// BinaryName is the file name GoBuild's callers give a binary of pkg for platform.
func BinaryName(pkg, platform string) string {
	return path.Base(pkg) + "-" + strings.ReplaceAll(platform, "/", "-")
}
