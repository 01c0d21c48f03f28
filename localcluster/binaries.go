package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BinDirEnv names the directory holding the pinned binaries when it is not ./bin of the
// repository the process runs in.
const BinDirEnv = "EDGEMIGRATE_BIN"

// KwokStagesFile is written next to the kwok binary by `make tools`, from the stages that
// the pinned kwok module ships.
const KwokStagesFile = "kwok-stages.yaml"

// ErrToolsMissing says that the control-plane binaries have not been built.
var ErrToolsMissing = errors.New("Kubernetes tools not found: run `make tools` (builds etcd, kube-apiserver, " +
	"kube-controller-manager, kube-scheduler, kubectl, kwok and helm into bin/)")

// binaries are the programs one cluster runs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", KwokStagesFile}

// FindBinDir returns the directory with the pinned binaries: $EDGEMIGRATE_BIN, else the
// first bin/ holding kube-apiserver in the working directory or one of its parents (so
// tests find the repository's bin/ from any package).
func FindBinDir() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return dir, checkBinDir(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding bin directory: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		candidate := filepath.Join(dir, "bin")
		if _, err := os.Stat(filepath.Join(candidate, "kube-apiserver")); err == nil {
			return candidate, checkBinDir(candidate)
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%w (searched bin/ from %s upwards; or set %s)", ErrToolsMissing, wd, BinDirEnv)
		}
	}
}

func checkBinDir(dir string) error {
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w: %s is missing from %s", ErrToolsMissing, name, dir)
		}
	}
	return nil
}

// SchedulerBinary is kube-scheduler built with edgemigrate's Jetson plugin by
// `make scheduler` (hack/build-scheduler.sh), in the same bin directory.
const SchedulerBinary = "edgemigrate-scheduler"

// LinkBinDir makes dir a bin directory for Options.BinDir that runs binDir's binaries, but
// binDir's scheduler (a file name such as SchedulerBinary) as the cluster's kube-scheduler.
// Calling it again with another scheduler relinks kube-scheduler, for the next
// StartScheduler. Flags, when given, are added to the scheduler's command line (by a
// wrapper script): those kube-scheduler takes only as flags. A scheduler missing from
// binDir is ErrToolsMissing.
func LinkBinDir(dir, binDir, scheduler string, flags ...string) error {
	if err := checkBinDir(binDir); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(binDir, scheduler)); err != nil {
		return fmt.Errorf("%w: %s is missing from %s (run `make scheduler`)", ErrToolsMissing, scheduler, binDir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating bin directory: %w", err)
	}
	for _, name := range binaries {
		target := filepath.Join(binDir, name)
		if name == "kube-scheduler" {
			target = filepath.Join(binDir, scheduler)
		}
		target, err := filepath.Abs(target)
		if err != nil {
			return fmt.Errorf("linking %s: %w", name, err)
		}
		// Link beside, then rename over: a running cluster never sees the name missing.
		link := filepath.Join(dir, name)
		_ = os.Remove(link + ".new")
		if name == "kube-scheduler" && len(flags) > 0 {
			script := "#!/bin/sh\nexec " + shellQuote(target) + ` "$@"`
			for _, f := range flags {
				script += " " + shellQuote(f)
			}
			if err := os.WriteFile(link+".new", []byte(script+"\n"), 0o755); err != nil {
				return fmt.Errorf("writing %s wrapper: %w", name, err)
			}
		} else if err := os.Symlink(target, link+".new"); err != nil {
			return fmt.Errorf("linking %s: %w", name, err)
		}
		if err := os.Rename(link+".new", link); err != nil {
			return fmt.Errorf("linking %s: %w", name, err)
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TempBinDir is LinkBinDir into a new temporary directory, from FindBinDir's. It returns
// both: relink with LinkBinDir(dir, pinned, …). The directory holds only links (or a
// wrapper script) and may outlive the process.
func TempBinDir(scheduler string, flags ...string) (dir, pinned string, err error) {
	pinned, err = FindBinDir()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "edgemigrate-bin-")
	if err != nil {
		return "", "", fmt.Errorf("creating bin directory: %w", err)
	}
	if err := LinkBinDir(dir, pinned, scheduler, flags...); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", err
	}
	return dir, pinned, nil
}
