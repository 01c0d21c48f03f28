package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/localcluster"
	"github.com/edgemigrate/edgemigrate/localcluster/clustertest"
)

const (
	// chartDir is the chart, relative to this package's directory (where go test runs).
	chartDir = "../../charts/edgemigrate"
	// release and namespace are those of manifests/: the names the plain YAML uses.
	release   = "edgemigrate"
	namespace = "edgemigrate-system"
)

// helmBin returns bin/helm, or skips (fails under EDGEMIGRATE_REQUIRE_TOOLS=1) without it.
func helmBin(t testing.TB) string {
	t.Helper()
	dir, err := localcluster.FindBinDir()
	if err == nil {
		if _, statErr := os.Stat(filepath.Join(dir, "helm")); statErr != nil {
			err = fmt.Errorf("%w: helm is missing from %s", localcluster.ErrToolsMissing, dir)
		}
	}
	if err != nil {
		if errors.Is(err, localcluster.ErrToolsMissing) && os.Getenv(clustertest.RequireToolsEnv) != "1" {
			t.Skip("SKIP: chart tests need bin/helm: " + err.Error())
		}
		t.Fatal(err)
	}
	return filepath.Join(dir, "helm")
}

// helm runs bin/helm and returns its standard output, or an error carrying its standard error.
func helm(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// templateArgs are the arguments of `helm template` for the release and extra arguments.
func templateArgs(extra ...string) []string {
	return append([]string{"template", release, chartDir, "--namespace", namespace, "--include-crds"}, extra...)
}

// object is one rendered document: always as unstructured, and typed when client-go's
// scheme knows its kind (decoded strictly, so an unknown or misspelt field fails).
type object struct {
	u     *unstructured.Unstructured
	typed runtime.Object
}

func (o object) String() string { return o.u.GetKind() + "/" + o.u.GetName() }

// rendered holds `helm template` output by kind.
type rendered []object

func (r rendered) ofKind(kind string) []object {
	var out []object
	for _, o := range r {
		if o.u.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) get(kind, name string) (object, bool) {
	for _, o := range r {
		if o.u.GetKind() == kind && o.u.GetName() == name {
			return o, true
		}
	}
	return object{}, false
}

func (r rendered) must(t testing.TB, kind, name string) object {
	t.Helper()
	o, ok := r.get(kind, name)
	if !ok {
		t.Fatalf("no %s %s rendered", kind, name)
	}
	return o
}

var strictDecoder = k8sjson.NewSerializerWithOptions(k8sjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	k8sjson.SerializerOptions{Yaml: true, Strict: true})

// decode splits a multi-document YAML stream and decodes every document.
func decode(data []byte) (rendered, error) {
	var out rendered
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("parsing document: %w\n%s", err, doc)
		}
		if len(m) == 0 {
			continue // comments only
		}
		o := object{u: &unstructured.Unstructured{Object: m}}
		if o.u.GetAPIVersion() == "" || o.u.GetKind() == "" || o.u.GetName() == "" {
			return nil, fmt.Errorf("document without apiVersion, kind or name:\n%s", doc)
		}
		typed, _, err := strictDecoder.Decode(doc, nil, nil)
		switch {
		case err == nil:
			o.typed = typed
		case runtime.IsNotRegisteredError(err):
			// CRDs, cert-manager and Prometheus Operator kinds: checked as unstructured.
		default:
			return nil, fmt.Errorf("decoding %s: %w", o, err)
		}
		out = append(out, o)
	}
}

// render runs `helm template` with extra arguments and decodes the result.
func render(t testing.TB, extra ...string) rendered {
	t.Helper()
	out, err := helm(t, templateArgs(extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
