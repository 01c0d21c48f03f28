package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/edgemigrate/edgemigrate/internal/images"
)

// ImagesDirEnv names the OCI layout of `make images` when it is not <bin>/images.
const ImagesDirEnv = "EDGEMIGRATE_IMAGES"

// ErrImagesMissing says that `make images` has not been run.
var ErrImagesMissing = errors.New("images not found: run `make images` (builds the OCI images real nodes run into bin/images)")

// Registry is a real OCI registry (go-containerregistry's) holding the images of `make
// images`, serving them on loopback to the host and on the cluster's bridge to its real
// nodes, whose containerd resolves images.Registry ("edgemigrate.local") to it. It counts
// the requests per repository, so tests can tell an image was really pulled.
type Registry struct {
	// Host is host:port on 127.0.0.1, for pushes and checks from this machine.
	Host string
	// NodeHost is host:port on the cluster's bridge, the mirror of the nodes' containerd.
	NodeHost string

	servers []*http.Server
	mu      sync.Mutex
	blobs   map[string]int // repository -> GET of a blob
}

// startRegistry serves the layout's blobs in place (they are content-addressed, so
// read-only use is safe) and pushes its manifests under their names.
func startRegistry(ctx context.Context, layoutDir, nodeIP string) (_ *Registry, err error) {
	built, err := images.ReadLayout(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImagesMissing, err)
	}
	r := &Registry{blobs: map[string]int{}}
	defer func() {
		if err != nil {
			r.stop()
		}
	}()
	handler := ggcrregistry.New(
		ggcrregistry.WithBlobHandler(ggcrregistry.NewDiskBlobHandler(filepath.Join(layoutDir, "blobs"))),
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
	)
	counted := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if repo, ok := blobRepository(req); ok {
			r.mu.Lock()
			r.blobs[repo]++
			r.mu.Unlock()
		}
		handler.ServeHTTP(w, req)
	})
	for _, addr := range []string{"127.0.0.1:0", net.JoinHostPort(nodeIP, "0")} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("registry: listening on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second}
		r.servers = append(r.servers, srv)
		go func() { _ = srv.Serve(l) }()
		if r.Host == "" {
			r.Host = l.Addr().String()
		} else {
			r.NodeHost = l.Addr().String()
		}
	}
	for _, b := range built {
		target, err := images.Rename(b.Ref, r.Host)
		if err != nil {
			return nil, err
		}
		ref, err := name.ParseReference(target, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("registry: image name %q: %w", target, err)
		}
		if b.Index != nil {
			err = remote.WriteIndex(ref, b.Index, remote.WithContext(ctx))
		} else {
			err = remote.Write(ref, b.Image, remote.WithContext(ctx))
		}
		if err != nil {
			return nil, fmt.Errorf("registry: loading %s: %w", b.Ref, err)
		}
	}
	r.mu.Lock()
	clear(r.blobs) // loading is not pulling
	r.mu.Unlock()
	return r, nil
}

// BlobPulls is how many blobs (layers and configurations) of repository ("testservice")
// have been downloaded from the registry.
func (r *Registry) BlobPulls(repository string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobs[repository]
}

func (r *Registry) stop() {
	for _, s := range r.servers {
		_ = s.Close()
	}
}

// blobRepository returns the repository of a blob download: GET /v2/<repo>/blobs/<digest>.
func blobRepository(req *http.Request) (string, bool) {
	if req.Method != http.MethodGet {
		return "", false
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, "/blobs/")
	if i <= 0 || strings.Contains(rest[i+len("/blobs/"):], "/") {
		return "", false
	}
	return rest[:i], true
}

// imagesDir is where the layout of `make images` is: $EDGEMIGRATE_IMAGES or <bin>/images.
func imagesDir(binDir string) (string, error) {
	dir := os.Getenv(ImagesDirEnv)
	if dir == "" {
		dir = filepath.Join(binDir, "images")
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return "", fmt.Errorf("%w: no OCI layout at %s (or set %s)", ErrImagesMissing, dir, ImagesDirEnv)
	}
	return dir, nil
}
