package v1alpha1_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

// generated are the files and trees `make generate` writes, relative to the repository.
var generated = []string{
	"api/v1alpha1/zz_generated.deepcopy.go",
	"api/generated",
	"manifests/crds",
	"charts/edgemigrate/crds",
}

// TestGeneratedUpToDate regenerates the API into a temporary directory and fails when a
// committed file differs, is missing or is left over: run `make generate`.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: builds the code generators; not run with -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"sigs.k8s.io/controller-tools/cmd/controller-gen", "k8s.io/code-generator/cmd/client-gen",
		"k8s.io/code-generator/cmd/lister-gen", "k8s.io/code-generator/cmd/informer-gen")
	build.Dir = filepath.Join(root, "hack/codegen")
	if out, err := build.CombinedOutput(); err != nil {
		msg := "SKIP: cannot build the code generators of hack/codegen: " + err.Error() + "\n" + string(out)
		if os.Getenv(clustertest.RequireToolsEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out := t.TempDir()
	gen := exec.Command("bash", filepath.Join(root, "hack/codegen/generate.sh"), out)
	gen.Env = append(os.Environ(), "CODEGEN_BIN="+bin)
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("hack/codegen/generate.sh: %v\n%s", err, b)
	}
	want, have := files(t, out), files(t, root)
	for name, w := range want {
		h, ok := have[name]
		switch {
		case !ok:
			t.Errorf("%s is not committed: run `make generate`", name)
		case !bytes.Equal(h, w):
			t.Errorf("%s differs from what the generators write: run `make generate`", name)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is no longer generated: delete it (`make generate` does for api/generated)", name)
		}
	}
}

// files reads the generated files under root.
func files(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, g := range generated {
		err := filepath.WalkDir(filepath.Join(root, g), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, path)
			out[rel] = b
			return err
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return out
}
