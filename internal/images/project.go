package images

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
)

// Project says where the project's sources are and what to build.
type Project struct {
	// Root is the repository's root (the product module).
	Root string
	// Work receives the compiled binaries and caches the classifier's weights, keyed by
	// what they depend on, so that a second build does not train again.
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
	// Out receives lines on the classifier's training and held-out accuracy; nil discards them.
	Out io.Writer
}

// DefaultPlatforms are the edgemigrate image's: x86 servers and Jetsons.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// Build compiles the project's programs and builds every image: edgemigrate (an index of
// Platforms); pause, the test service and the two inference services (amd64 and arm64,
// they are small), the classifier with the weights trained first (or found in Work);
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
	weights, err := p.trainClassifier(ctx)
	if err != nil {
		return nil, err
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
			Files: []File{{Path: mnist.ImagePath, Source: weights}}}, "./internal/images/classifier", DefaultPlatforms},
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
	if p.KubeScheduler != "" {
		version, err := binaryVersion(ctx, p.KubeScheduler)
		if err != nil {
			return nil, err
		}
		b, err := Build(Spec{Repository: KubeScheduler, Tag: version, Command: "kube-scheduler", NoEntrypoint: true,
			Binaries: map[string]string{"linux/amd64": p.KubeScheduler}}, ca)
		if err != nil {
			return nil, err
		}
		built = append(built, b)
	}
	if p.EdgemigrateScheduler != "" {
		b, err := Build(Spec{Repository: EdgemigrateScheduler, Tag: p.Version, Command: "edgemigrate-scheduler", NoEntrypoint: true,
			Binaries: map[string]string{"linux/amd64": p.EdgemigrateScheduler}}, ca)
		if err != nil {
			return nil, err
		}
		built = append(built, b)
	}
	return built, nil
}

// trainClassifier returns the classifier's weights file: trained from GoMNIST's training
// split, or cached in Work by an earlier build with the same inputs.
func (p Project) trainClassifier(ctx context.Context) (string, error) {
	data, err := mnist.DataDir(ctx, p.Root)
	if err != nil {
		return "", fmt.Errorf("classifier: %w", err)
	}
	out := p.Out
	if out == nil {
		out = io.Discard
	}
	c := mnist.DefaultConfig()
	fmt.Fprintf(out, "classifier: %d→%d→%d network, %d epochs on MNIST's training split (unless cached in %s)\n",
		mnist.Pixels, c.Hidden, mnist.Classes, c.Epochs, p.Work)
	t, err := mnist.TrainCached(ctx, data, p.Work, c)
	if err != nil {
		return "", fmt.Errorf("classifier: %w", err)
	}
	how := "cached"
	if !t.Cached {
		how = "trained in " + t.TrainTime.Round(time.Second).String()
	}
	fmt.Fprintf(out, "classifier: weights %s (%s), held-out accuracy %.2f%% on MNIST t10k (10000 images)\n", t.Path, how, 100*t.Accuracy)
	return t.Path, nil
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
