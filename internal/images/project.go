package images

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
)

// Project says where the project's sources are and what to build.
type Project struct {
	// Root is the repository's root (the product module).
	Root string
	// Work receives the compiled binaries.
	Work string
	// Version tags the edgemigrate, test service and inference images: the chart's appVersion.
	Version string
	// Platforms of the edgemigrate image; default linux/amd64 and linux/arm64 (Jetson).
	Platforms []string
	// KubeScheduler is a static kube-scheduler for linux/amd64 (hack/build-tools.sh
	// kube-scheduler-static); empty leaves its image out.
	KubeScheduler string
	// EdgemigrateScheduler is a static edgemigrate-scheduler for linux/amd64
	// (hack/build-scheduler.sh static), tagged Version as the chart expects; empty leaves
	// its image out.
	EdgemigrateScheduler string
	// ClassifierWeights is the classifier's weights file (hack/images trains it) and where
	// in its image the classifier reads it.
	ClassifierWeights File
}

// DefaultPlatforms are the edgemigrate image's: x86 servers and Jetsons.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// Build compiles the project's programs and builds every image: edgemigrate (an index of
// Platforms); pause, the test service and the two inference services (amd64 and arm64,
// they are small), the classifier with ClassifierWeights;
// and, when given, kube-scheduler and edgemigrate-scheduler.
func (p Project) Build(ctx context.Context) ([]Built, error) {
	platforms := p.Platforms
	if len(platforms) == 0 {
		platforms = DefaultPlatforms
	}
	ca, err := ReadCABundle()
	if err != nil {
		return nil, err
	}
	if p.ClassifierWeights.Path == "" || p.ClassifierWeights.Source == "" {
		return nil, fmt.Errorf("images: the classifier's weights file is required")
	}
	programs := []struct {
		spec      Spec
		pkg       string
		platforms []string
	}{
		{Spec{Repository: Edgemigrate, Tag: p.Version, Command: "edgemigrate"}, "./cmd/edgemigrate", platforms},
		{Spec{Repository: Pause, Tag: PauseTag, Command: "pause"}, "./internal/images/pause", DefaultPlatforms},
		{Spec{Repository: TestService, Tag: p.Version, Command: "testservice"}, "./internal/images/testservice", DefaultPlatforms},
		{Spec{Repository: Classifier, Tag: p.Version, Command: "classifier",
			Files: []File{p.ClassifierWeights}}, "./internal/images/classifier", DefaultPlatforms},
		{Spec{Repository: Profiler, Tag: p.Version, Command: "profiler"}, "./internal/images/profiler", DefaultPlatforms},
	}
	var built []Built
	for _, prog := range programs {
		prog.spec.Binaries = map[string]string{}
		for _, platform := range prog.platforms {
			out := filepath.Join(p.Work, BinaryName(prog.pkg, platform))
			if err := GoBuild(ctx, p.Root, prog.pkg, platform, out); err != nil {
				return nil, err
			}
			prog.spec.Binaries[platform] = out
		}
		b, err := Build(prog.spec, ca)
		if err != nil {
			return nil, err
		}
		built = append(built, b)
	}
	// Both schedulers are built (statically) for this machine by hack/: their image is of its
	// architecture.
	host := "linux/" + runtime.GOARCH
	if p.KubeScheduler != "" {
		version, err := binaryVersion(ctx, p.KubeScheduler)
		if err != nil {
			return nil, err
		}
		b, err := Build(Spec{Repository: KubeScheduler, Tag: version, Command: "kube-scheduler", NoEntrypoint: true,
			Binaries: map[string]string{host: p.KubeScheduler}}, ca)
		if err != nil {
			return nil, err
		}
		built = append(built, b)
	}
	if p.EdgemigrateScheduler != "" {
		b, err := Build(Spec{Repository: EdgemigrateScheduler, Tag: p.Version, Command: "edgemigrate-scheduler", NoEntrypoint: true,
			Binaries: map[string]string{host: p.EdgemigrateScheduler}}, ca)
		if err != nil {
			return nil, err
		}
		built = append(built, b)
	}
	return built, nil
}

var kubernetesVersion = regexp.MustCompile(`Kubernetes (v\d+\.\d+\.\d+\S*)`)

// binaryVersion asks a Kubernetes binary its version, so that the image's tag is what it
// says it is.
func binaryVersion(ctx context.Context, binary string) (string, error) {
	out, err := exec.CommandContext(ctx, binary, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", binary, err, out)
	}
	m := kubernetesVersion.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed no Kubernetes version: %q", binary, out)
	}
	return string(m[1]), nil
}
