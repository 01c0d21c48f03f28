// Package policy is a destination cluster's terms for hosting a peer's service: which
// namespaces it lands in, which images and how much of them, and Pod Security
// restricted-level pod specs. Its operator sets it (chart values → one YAML file); the
// descheduler checks it on a proposal's metadata before bidding and on the fetched bundle
// before creating anything. Pure logic: no client, no clock.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
)

// Namespace mappings: where a peer's service from namespace N of source cluster S lands.
const (
	// MappingSame: in N itself, when N is allowed.
	MappingSame = "Same"
	// MappingSourcePrefix: in "S-N", one namespace per source cluster and namespace, as
	// Liqo maps remote namespaces, so two peers' services never share a namespace.
	MappingSourcePrefix = "SourcePrefix"
)

// Config is the destination policy. The zero value hosts nothing; Default is what the
// descheduler uses without --policy-file.
type Config struct {
	Namespaces Namespaces `json:"namespaces"`
	Images     Images     `json:"images"`
	Limits     Limits     `json:"limits"`
	Services   Services   `json:"services"`
	// ServiceAccounts a hosted workload may run as, besides "default"; each must already
	// exist in the hosted namespace (it never travels).
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`
	// AllowServiceAccountToken lets a hosted pod mount a service account token (automount
	// or a projected token). Off: the pod spec must say automountServiceAccountToken: false.
	AllowServiceAccountToken bool `json:"allowServiceAccountToken,omitempty"`

	// OwnNamespace is the descheduler's own (--namespace): never a hosted one. Not in the
	// file: the descheduler sets it.
	OwnNamespace string `json:"-"`
}

// Namespaces say where peers' services land.
type Namespaces struct {
	// Mapping is MappingSame (default) or MappingSourcePrefix.
	Mapping string `json:"mapping,omitempty"`
	// Allow are names or globs (path.Match: "edge-*") of the source namespaces that may be
	// hosted. Empty hosts nothing. kube-* and edgemigrate's own namespaces never are.
	Allow []string `json:"allow,omitempty"`
	// Create lets the descheduler create a hosted namespace that does not exist yet
	// (labelled Pod Security enforce=restricted). Off: only existing namespaces are used.
	Create bool `json:"create,omitempty"`
}

// Images say which images a hosted service may run.
type Images struct {
	// Registries are allowed prefixes of the normalized image reference, such as
	// "registry.example.com/" or "docker.io/library/"; empty allows every registry.
	Registries []string `json:"registries,omitempty"`
	// RequireDigest refuses images not pinned by digest (name@sha256:…).
	RequireDigest bool `json:"requireDigest,omitempty"`
}

// Limits bound what one source cluster may have hosted here, all its services together.
type Limits struct {
	// MaxReplicas; 0 means no limit.
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// MaxDemand: total requests; an absent resource is not limited.
	MaxDemand Demand `json:"maxDemand,omitempty"`
}

// Demand is an amount of compute in Kubernetes quantities.
type Demand struct {
	CPU       *resource.Quantity `json:"cpu,omitempty"`
	Memory    *resource.Quantity `json:"memory,omitempty"`
	GPU       *int64             `json:"gpu,omitempty"`
	GPUMemory *resource.Quantity `json:"gpuMemory,omitempty"`
}

// Services say which kinds of Service a bundle may bring. By default only ClusterIP
// (headless included): a peer does not open ports on this cluster's nodes or addresses.
type Services struct {
	AllowNodePort     bool `json:"allowNodePort,omitempty"`
	AllowLoadBalancer bool `json:"allowLoadBalancer,omitempty"`
	AllowExternalIPs  bool `json:"allowExternalIPs,omitempty"`
}

// DefaultMaxReplicas bounds Default's replicas per source cluster.
const DefaultMaxReplicas = 32

// Default hosts every namespace but the system ones under its own name, creating it when
// missing, from any registry, up to DefaultMaxReplicas replicas per source; pod specs must
// be restricted-level, with no service account token.
func Default() *Config {
	return &Config{
		Namespaces: Namespaces{Mapping: MappingSame, Allow: []string{"*"}, Create: true},
		Limits:     Limits{MaxReplicas: DefaultMaxReplicas},
	}
}

// Load reads a policy file; an empty path is Default. Unknown or misspelt fields are
// errors, so a typo does not silently widen or narrow the policy.
func Load(file string) (*Config, error) {
	if file == "" {
		return Default(), nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", file, err)
	}
	return c, nil
}

// Parse decodes and validates a policy document.
func Parse(raw []byte) (*Config, error) {
	c := &Config{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := yaml.UnmarshalStrict(raw, c); err != nil {
			return nil, fmt.Errorf("decoding: %w", err)
		}
	}
	if c.Namespaces.Mapping == "" {
		c.Namespaces.Mapping = MappingSame
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate reports every invalid field at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Namespaces.Mapping {
	case MappingSame, MappingSourcePrefix:
	default:
		add("namespaces.mapping %q: want %s or %s", c.Namespaces.Mapping, MappingSame, MappingSourcePrefix)
	}
	for _, g := range c.Namespaces.Allow {
		if _, err := path.Match(g, ""); err != nil {
			add("namespaces.allow %q: not a glob: %v", g, err)
		}
	}
	for _, r := range c.Images.Registries {
		if strings.TrimSpace(r) == "" {
			add("images.registries: an empty prefix would allow every image; leave the list empty instead")
		}
	}
	if c.Limits.MaxReplicas < 0 {
		add("limits.maxReplicas %d: want 0 (no limit) or more", c.Limits.MaxReplicas)
	}
	d := c.Limits.MaxDemand
	for _, q := range []struct {
		name string
		q    *resource.Quantity
	}{{"cpu", d.CPU}, {"memory", d.Memory}, {"gpuMemory", d.GPUMemory}} {
		if q.q != nil && q.q.Sign() < 0 {
			add("limits.maxDemand.%s %s is negative", q.name, q.q.String())
		}
	}
	if d.GPU != nil && *d.GPU < 0 {
		add("limits.maxDemand.gpu %d is negative", *d.GPU)
	}
	for _, sa := range c.ServiceAccounts {
		if msgs := validation.IsDNS1123Subdomain(sa); len(msgs) > 0 {
			add("serviceAccounts %q: %s", sa, strings.Join(msgs, "; "))
		}
		if sa == api.HostServiceAccount {
			add("serviceAccounts %q: that is the identity edgemigrate creates a peer's objects with, not one a workload may run as", sa)
		}
	}
	return errors.Join(errs...)
}

// systemNamespace: never hosted, whatever the allow-list says.
func (c *Config) Reserved(namespace string) bool {
	return strings.HasPrefix(namespace, "kube-") || namespace == api.SystemNamespace || (c.OwnNamespace != "" && namespace == c.OwnNamespace)
}

// HostNamespace says where a service of source cluster source, in namespace namespace
// there, lands here, or why it may not.
func (c *Config) HostNamespace(source, namespace string) (string, error) {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return "", fmt.Errorf("namespace %q is not a valid namespace name: %s", namespace, strings.Join(msgs, "; "))
	}
	if c.Reserved(namespace) {
		return "", fmt.Errorf("namespace %s is a system namespace; this cluster never hosts peers' services there", namespace)
	}
	allowed := false
	for _, g := range c.Namespaces.Allow {
		if ok, _ := path.Match(g, namespace); ok {
			allowed = true
			break
		}
	}
	if !allowed {
		return "", fmt.Errorf("namespace %s is not among the namespaces this cluster hosts peers' services in (%s)", namespace, allowList(c.Namespaces.Allow))
	}
	if c.Namespaces.Mapping != MappingSourcePrefix {
		return namespace, nil
	}
	if msgs := validation.IsDNS1123Label(source); len(msgs) > 0 {
		return "", fmt.Errorf("source cluster %q is not a valid cluster id: %s", source, strings.Join(msgs, "; "))
	}
	hosted := source + "-" + namespace
	if len(hosted) > validation.DNS1123LabelMaxLength {
		return "", fmt.Errorf("namespace %s of cluster %s would be hosted as %s, longer than %d characters", namespace, source, hosted, validation.DNS1123LabelMaxLength)
	}
	if c.Reserved(hosted) {
		return "", fmt.Errorf("namespace %s of cluster %s would be hosted in the system namespace %s", namespace, source, hosted)
	}
	return hosted, nil
}

func allowList(globs []string) string {
	if len(globs) == 0 {
		return "none"
	}
	return strings.Join(globs, ", ")
}
