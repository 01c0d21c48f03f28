package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
