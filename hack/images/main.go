// Command images builds the project's OCI images into an OCI layout (`make images`) and
// pushes them to a registry (`make images-push`), without a container engine. Building
// trains the classifier's weights first, or reuses those cached in the work directory
// (beside --out, images-build/) by an earlier build with the same inputs.
//
//	go run ./hack/images build --out bin/images --version 0.1.0 [--kube-scheduler bin/static/kube-scheduler] [--edgemigrate-scheduler bin/static/edgemigrate-scheduler]
//	go run ./hack/images push --layout bin/images --repo ghcr.io/me
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/edgemigrate/edgemigrate/internal/images"
	"github.com/edgemigrate/edgemigrate/internal/inference/mnist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: images build|push [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, os.Args[2:])
	case "push":
		err = push(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: want build or push", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func build(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	out := fs.String("out", "bin/images", "OCI layout directory to write")
	version := fs.String("version", "", "tag of the edgemigrate and test service images (the chart's appVersion)")
	platforms := fs.String("platforms", strings.Join(images.DefaultPlatforms, ","), "platforms of the edgemigrate image")
	scheduler := fs.String("kube-scheduler", "", "static kube-scheduler binary for its image (none: no image)")
	pluginScheduler := fs.String("edgemigrate-scheduler", "", "static edgemigrate-scheduler binary for its image (none: no image)")
	_ = fs.Parse(args)
	if *version == "" {
		return fmt.Errorf("--version is required")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work := filepath.Join(filepath.Dir(*out), "images-build")
	weights, err := trainClassifier(ctx, root, work, os.Stdout)
	if err != nil {
		return err
	}
	p := images.Project{Root: root, Work: work, Version: *version, Platforms: strings.Split(*platforms, ","),
		KubeScheduler: *scheduler, EdgemigrateScheduler: *pluginScheduler,
		ClassifierWeights: images.File{Path: mnist.ImagePath, Source: weights}}
	built, err := p.Build(ctx)
	if err != nil {
		return err
	}
	if err := images.WriteLayout(*out, built); err != nil {
		return err
	}
	for _, b := range built {
		d, err := b.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s@%s\n", b.Ref, d)
	}
	fmt.Printf("OCI layout: %s\n", *out)
	return nil
}

func push(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	dir := fs.String("layout", "bin/images", "OCI layout written by build")
	repo := fs.String("repo", "", "registry and path to push to, e.g. ghcr.io/me")
	_ = fs.Parse(args)
	if *repo == "" {
		return fmt.Errorf("--repo is required (IMAGE_REPO=registry/path make images-push)")
	}
	built, err := images.ReadLayout(*dir)
	if err != nil {
		return err
	}
	for _, b := range built {
		target, err := images.Rename(b.Ref, *repo)
		if err != nil {
			return err
		}
		ref, err := name.ParseReference(target)
		if err != nil {
			return fmt.Errorf("image name %q: %w", target, err)
		}
		opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
		if b.Index != nil {
			err = remote.WriteIndex(ref, b.Index, opts...)
		} else {
			err = remote.Write(ref, b.Image, opts...)
		}
		if err != nil {
			return fmt.Errorf("pushing %s: %w", target, err)
		}
		d, _ := b.Digest()
		fmt.Printf("%s@%s\n", target, d)
	}
	return nil
}

// trainClassifier returns the classifier's weights file: trained from GoMNIST's training
// split, or cached in work by an earlier build with the same inputs (a second build does
// not train again).
func trainClassifier(ctx context.Context, root, work string, out io.Writer) (string, error) {
	data, err := mnist.DataDir(ctx, root)
	if err != nil {
		return "", fmt.Errorf("classifier: %w", err)
	}
	c := mnist.DefaultConfig()
	fmt.Fprintf(out, "classifier: %d→%d→%d network, %d epochs on MNIST's training split (unless cached in %s)\n",
		mnist.Pixels, c.Hidden, mnist.Classes, c.Epochs, work)
	t, err := mnist.TrainCached(ctx, data, work, c)
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
