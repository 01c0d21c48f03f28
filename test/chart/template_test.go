package chart

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	schedconfig "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgemigrate/edgemigrate/api"
	"github.com/edgemigrate/edgemigrate/manifests"
	"github.com/edgemigrate/edgemigrate/policy"
)

// Names of the objects rendered for release "edgemigrate".
const (
	schedulerName   = "edgemigrate-scheduler"
	webhookName     = "edgemigrate-webhook"
	deschedulerName = "edgemigrate-descheduler"
	locatorName     = "edgemigrate-locator"
	clientTokens    = "edgemigrate-client-tokens"
	identityName    = "edgemigrate-identity"
	identitySecret  = api.ClusterIdentitySecret
)

// rule is one expanded RBAC permission: group, resource, verb and object name ("" for any).
type rule struct{ group, resource, verb, name string }

func (r rule) String() string {
	s := r.group + "/" + r.resource + ":" + r.verb
	if r.name != "" {
		s += "[" + r.name + "]"
	}
	return s
}

// rules expands grants: rules(groups, resources, verbs, names...).
func rules(groups, resources, verbs []string, names ...string) []rule {
	if len(names) == 0 {
		names = []string{""}
	}
	var out []rule
	for _, g := range groups {
		for _, res := range resources {
			for _, v := range verbs {
				for _, n := range names {
					out = append(out, rule{g, res, v, n})
				}
			}
		}
	}
	return out
}

func expand(policy []rbacv1.PolicyRule) []rule {
	var out []rule
	for _, p := range policy {
		out = append(out, rules(p.APIGroups, p.Resources, p.Verbs, p.ResourceNames...)...)
	}
	return out
}

var (
	core     = []string{""}
	apps     = []string{"apps"}
	coord    = []string{"coordination.k8s.io"}
	admreg   = []string{"admissionregistration.k8s.io"}
	read     = []string{"get", "list", "watch"}
	migGroup = []string{"edgemigrate.io"}
	rbac     = []string{"rbac.authorization.k8s.io"}
	// hostVerbs: what the host identity does with each of a bundle's kinds.
	hostVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

// wantRoles is every Role and ClusterRole the chart may render and exactly what each grants:
// a new permission must be added here, with its reason in the template.
func wantRoles(selfSigned, createNamespaces bool) map[string][]rule {
	namespaces := rules(core, []string{"namespaces"}, []string{"get"})
	if createNamespaces {
		// descheduler.policy.namespaces.create: a missing hosted namespace is created.
		namespaces = rules(core, []string{"namespaces"}, []string{"get", "create"})
	}
	webhook := slices.Concat(
		rules(core, []string{"namespaces", "nodes"}, read),
		rules(apps, []string{"replicasets"}, read),
	)
	if selfSigned {
		// Its own configuration only, for the caBundle.
		webhook = append(webhook, rules(admreg, []string{"mutatingwebhookconfigurations"}, []string{"get", "update", "patch"}, webhookName)...)
	}
	return map[string][]rule{
		"ClusterRole/" + webhookName: webhook,
		// No cluster-wide create of workloads, Services or ConfigMaps: a peer's objects are
		// created as the hosted namespace's edgemigrate-host, whose role it may bind and
		// whose identity it may impersonate, and no other.
		"ClusterRole/" + deschedulerName: slices.Concat(
			rules(core, []string{"pods"}, read),
			rules(core, []string{"pods/eviction"}, []string{"create"}),
			rules(apps, []string{"deployments"}, []string{"get", "list", "watch", "update", "patch"}),
			rules(core, []string{"services", "configmaps"}, read),
			rules([]string{"policy"}, []string{"poddisruptionbudgets"}, read),
			rules([]string{"autoscaling"}, []string{"horizontalpodautoscalers"}, read),
			rules([]string{"scheduling.k8s.io"}, []string{"priorityclasses"}, []string{"get"}),
			rules([]string{"node.k8s.io"}, []string{"runtimeclasses"}, []string{"get"}),
			rules(core, []string{"serviceaccounts"}, []string{"get", "create"}),
			rules(rbac, []string{"rolebindings"}, []string{"get", "create"}),
			rules(rbac, []string{"clusterroles"}, []string{"bind"}, api.HostClusterRole),
			rules(core, []string{"serviceaccounts"}, []string{"impersonate"}, api.HostServiceAccount),
			namespaces,
			rules(core, []string{"nodes"}, read),
			rules([]string{"", "events.k8s.io"}, []string{"events"}, []string{"create", "patch"}),
			rules(migGroup, []string{"migrations"}, []string{"get", "list", "watch", "create", "delete"}),
			rules(migGroup, []string{"migrations/status"}, []string{"get", "update"}),
		),
		// Exactly a bundle's kinds, bound per hosted namespace.
		"ClusterRole/" + api.HostClusterRole: slices.Concat(
			rules(apps, []string{"deployments"}, hostVerbs),
			rules(core, []string{"pods", "services", "configmaps"}, hostVerbs),
			rules([]string{"policy"}, []string{"poddisruptionbudgets"}, hostVerbs),
			rules([]string{"autoscaling"}, []string{"horizontalpodautoscalers"}, hostVerbs),
			// A bid checks that the Secrets a workload names exist here.
			rules(core, []string{"secrets"}, []string{"get"}),
		),
		namespace + "/Role/" + deschedulerName: slices.Concat(
			rules(coord, []string{"leases"}, []string{"get", "create", "update"}),
			rules(core, []string{"secrets"}, []string{"get"}, clientTokens),
			rules(core, []string{"secrets"}, []string{"list", "watch"}),
			rules(core, []string{"configmaps"}, []string{"get", "create", "update", "delete"}),
		),
		namespace + "/Role/" + schedulerName: slices.Concat(
			rules(coord, []string{"leases"}, []string{"create"}),
			rules(coord, []string{"leases"}, []string{"get", "update"}, "edgemigrate-scheduler"),
		),
	}
}

// wantBindings: binding → role it grants; every subject is the component's ServiceAccount.
var wantBindings = map[string]struct{ roleRef, subject string }{
	"ClusterRoleBinding/" + schedulerName + "-kube-scheduler":                      {"ClusterRole/system:kube-scheduler", schedulerName},
	"ClusterRoleBinding/" + schedulerName + "-volume-scheduler":                    {"ClusterRole/system:volume-scheduler", schedulerName},
	"ClusterRoleBinding/" + webhookName:                                            {"ClusterRole/" + webhookName, webhookName},
	"ClusterRoleBinding/" + deschedulerName:                                        {"ClusterRole/" + deschedulerName, deschedulerName},
	namespace + "/RoleBinding/" + schedulerName:                                    {"Role/" + schedulerName, schedulerName},
	namespace + "/RoleBinding/" + deschedulerName:                                  {"Role/" + deschedulerName, deschedulerName},
	"kube-system/RoleBinding/" + schedulerName + "-edgemigrate-system-auth-reader": {"Role/extension-apiserver-authentication-reader", schedulerName},
}

func key(o object) string {
	k := o.u.GetKind() + "/" + o.u.GetName()
	if ns := o.u.GetNamespace(); ns != "" {
		k = ns + "/" + k
	}
	return k
}

// valueSet is one way operators install the chart, with what is particular to it.
type valueSet struct {
	name  string
	args  []string
	check func(t *testing.T, r rendered)
}

const testCABundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="

var valueSets = []valueSet{
	{
		name: "strict hosting policy",
		args: []string{"--set", "descheduler.policy.namespaces.create=false", "--set", "descheduler.policy.namespaces.mapping=SourcePrefix",
			"--set", "descheduler.policy.namespaces.allow={cars,edge-*}", "--set", "descheduler.policy.serviceAccounts={reader}",
			"--set", "descheduler.policy.images.registries={registry.example.com/}", "--set", "descheduler.policy.images.requireDigest=true",
			"--set", "descheduler.policy.limits.maxReplicas=4", "--set", "descheduler.policy.limits.maxDemand.memory=16Gi",
			"--set", "descheduler.policy.services.allowNodePort=true", "--set", "descheduler.policy.allowServiceAccountToken=true"},
		check: func(t *testing.T, r rendered) {
			c := hostingPolicy(t, r)
			if c.Namespaces.Create || c.Namespaces.Mapping != policy.MappingSourcePrefix || !slices.Equal(c.Namespaces.Allow, []string{"cars", "edge-*"}) ||
				!slices.Equal(c.ServiceAccounts, []string{"reader"}) || !slices.Equal(c.Images.Registries, []string{"registry.example.com/"}) ||
				!c.Images.RequireDigest || c.Limits.MaxReplicas != 4 || c.Limits.MaxDemand.Memory.String() != "16Gi" || c.Limits.MaxDemand.CPU != nil ||
				!c.Services.AllowNodePort || c.Services.AllowLoadBalancer || !c.AllowServiceAccountToken {
				t.Errorf("policy.yaml decodes to %+v, not the values given", c)
			}
			vap := validations(t, r)
			if !strings.Contains(vap, "in ['default', 'reader']") || !strings.Contains(vap, "object.spec.type == 'NodePort'") ||
				strings.Contains(vap, "automountServiceAccountToken: false") {
				t.Errorf("the ValidatingAdmissionPolicy does not follow the policy values (reader allowed, NodePort allowed, tokens allowed):\n%s", vap)
			}
		},
	},
	{
		name: "defaults",
		check: func(t *testing.T, r rendered) {
			wantTLSMode(t, r, "--self-signed", "")
			if n := len(r.ofKind("Issuer")) + len(r.ofKind("Certificate")); n != 0 {
				t.Errorf("self-signed mode renders %d cert-manager objects", n)
			}
			if *deployment(t, r, webhookName).Spec.Replicas != 1 {
				t.Error("self-signed mode must run one webhook replica: its CA lives in the process")
			}
			args := containerArgs(t, r, deschedulerName, "descheduler")
			for _, want := range []string{"--ledger-backend=remote", "--cluster-id=edge-1", "--location=35.888,128.611",
				"--public-endpoint=https://" + locatorName + "." + namespace + ".svc:8090",
				"--tls-cert-file=/etc/edgemigrate/identity/tls.crt", "--tls-key-file=/etc/edgemigrate/identity/tls.key", "--tls-ca-file=/etc/edgemigrate/identity/ca.crt"} {
				if !slices.Contains(args, want) {
					t.Errorf("descheduler args %q lack %s", args, want)
				}
			}
			if len(r.ofKind("ServiceMonitor"))+len(r.ofKind("NetworkPolicy")) != 0 {
				t.Error("ServiceMonitor or NetworkPolicy rendered though not enabled")
			}
			if d := deployment(t, r, deschedulerName); *d.Spec.Replicas != 2 {
				t.Errorf("descheduler replicas %d, want 2 (leader-elected)", *d.Spec.Replicas)
			}
			// A leader that cannot register gives way; the probes say why.
			if !slices.Contains(args, "--register-timeout=2m") || !slices.Contains(args, "--leader-elect=true") {
				t.Errorf("descheduler args %q lack --register-timeout=2m or --leader-elect=true", args)
			}
			ctr := deployment(t, r, deschedulerName).Spec.Template.Spec.Containers[0]
			if p := ctr.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.FailureThreshold < 2 {
				t.Errorf("descheduler liveness probe %+v, want /healthz, tolerating a failed probe", p)
			}
			if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
				t.Errorf("descheduler readiness probe %+v, want /readyz", p)
			}
			// Only the leader is Ready: a budget on the descheduler would forbid evicting it.
			for _, o := range r.ofKind("PodDisruptionBudget") {
				if sel := unstructuredMap(o.u.Object, "spec", "selector", "matchLabels"); sel["app.kubernetes.io/component"] == "descheduler" {
					t.Errorf("%s covers the descheduler, whose standby is never Ready: draining the leader's node would be refused", o)
				}
			}
			if n := len(r.ofKind("PodDisruptionBudget")); n != 2 {
				t.Errorf("%d PodDisruptionBudgets, want the scheduler's and the webhook's", n)
			}
			// Plugin mode: edgemigrate-scheduler alone, with the chart's jetson.* defaults.
			wantPluginMode(t, r, map[string]string{"policy": "binpack", "memoryReserve": "1Gi", "nodeSelector": "nvidia.com/gpu.product,kubernetes.io/arch=arm64"})
		},
	},
	{
		name: "plugin mode with jetson values",
		args: []string{"--set", "scheduler.mode=plugin", "--set", "jetson.policy=spread", "--set", "jetson.memoryReserve=2Gi",
			"--set", "jetson.nodeSelector=edgemigrate.io/jetson=true", "--set", "scheduler.pluginImage.tag=v9"},
		check: func(t *testing.T, r rendered) {
			wantPluginMode(t, r, map[string]string{"policy": "spread", "memoryReserve": "2Gi", "nodeSelector": "edgemigrate.io/jetson=true"})
			if img := deployment(t, r, schedulerName).Spec.Template.Spec.Containers[0].Image; img != "edgemigrate.local/edgemigrate-scheduler:v9" {
				t.Errorf("scheduler image %q, want scheduler.pluginImage", img)
			}
		},
	},
	{
		name: "extender mode",
		args: []string{"--set", "scheduler.mode=extender", "--set", "jetson.policy=spread", "--set", "jetson.memoryReserve=2Gi",
			"--set", "jetson.nodeSelector=edgemigrate.io/jetson=true"},
		check: func(t *testing.T, r rendered) {
			spec := deployment(t, r, schedulerName).Spec.Template.Spec
			if len(spec.Containers) != 2 || spec.Containers[0].Image != "registry.k8s.io/kube-scheduler:v1.37.2" ||
				spec.Containers[0].Command[0] != "kube-scheduler" || spec.Containers[1].Name != "extender" {
				t.Errorf("scheduler pod %+v, want the stock kube-scheduler and the extender sidecar", spec.Containers)
			}
			args := containerArgs(t, r, schedulerName, "extender")
			for _, want := range []string{"--policy=spread", "--memory-reserve=2Gi", "--jetson-node-selector=edgemigrate.io/jetson=true", "--metrics-address=:8889"} {
				if !slices.Contains(args, want) {
					t.Errorf("extender args %q lack %s", args, want)
				}
			}
			cfg := schedulerConfig(t, r)
			if len(cfg.Extenders) != 1 || cfg.Profiles[0].Plugins != nil || cfg.Profiles[0].PluginConfig != nil {
				t.Errorf("extender-mode config: extenders %+v, plugins %+v", cfg.Extenders, cfg.Profiles[0].Plugins)
			}
		},
	},
	{
		name: "cert-manager",
		args: []string{"--set", "webhook.tls.mode=certManager"},
		check: func(t *testing.T, r rendered) {
			issuer := r.must(t, "Issuer", webhookName)
			cert := r.must(t, "Certificate", webhookName)
			secret := wantTLSMode(t, r, "--tls-cert-file=/etc/edgemigrate/tls/tls.crt", "")
			if got := unstructuredString(cert.u.Object, "spec", "secretName"); got != secret {
				t.Errorf("Certificate writes Secret %q, the webhook mounts %q", got, secret)
			}
			if got := unstructuredString(cert.u.Object, "spec", "issuerRef", "name"); got != issuer.u.GetName() {
				t.Errorf("Certificate issuer %q, want %q", got, issuer.u.GetName())
			}
			dns := unstructuredStrings(cert.u.Object, "spec", "dnsNames")
			if !slices.Contains(dns, webhookName+"."+namespace+".svc") {
				t.Errorf("Certificate dnsNames %q do not name the Service", dns)
			}
			mwc := webhookConfig(t, r)
			if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != namespace+"/"+cert.u.GetName() {
				t.Errorf("inject-ca-from %q, want %s/%s", got, namespace, cert.u.GetName())
			}
			if *deployment(t, r, webhookName).Spec.Replicas != 2 {
				t.Error("cert-manager mode should run two webhook replicas")
			}
		},
	},
	{
		name: "provided secret",
		args: []string{"--set", "webhook.tls.mode=secret", "--set", "webhook.tls.secret.name=my-webhook-tls", "--set", "webhook.tls.secret.caBundle=" + testCABundle},
		check: func(t *testing.T, r rendered) {
			if secret := wantTLSMode(t, r, "--tls-key-file=/etc/edgemigrate/tls/tls.key", testCABundle); secret != "my-webhook-tls" {
				t.Errorf("webhook mounts Secret %q, want my-webhook-tls", secret)
			}
			if len(r.ofKind("Issuer"))+len(r.ofKind("Certificate")) != 0 {
				t.Error("provided-secret mode renders cert-manager objects")
			}
		},
	},
	// The cluster identity (mutual TLS between clusters).
	{
		name: "identity from an existing secret",
		args: []string{"--set", "identity.secretName=edge-1-identity"},
		check: func(t *testing.T, r rendered) {
			if got := secretVolumes(deployment(t, r, deschedulerName)); !slices.Equal(got, []string{"edge-1-identity"}) {
				t.Errorf("descheduler mounts Secrets %q, want the identity edge-1-identity alone", got)
			}
			d := deployment(t, r, deschedulerName)
			for _, p := range []*corev1.Probe{d.Spec.Template.Spec.Containers[0].ReadinessProbe, d.Spec.Template.Spec.Containers[0].LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("descheduler probe %+v, want HTTPS (the public endpoint serves TLS)", p)
				}
			}
		},
	},
	{
		name: "identity by cert-manager",
		args: []string{"--set", "identity.mode=certManager", "--set", "identity.mspId=Edge1MSP", "--set", "identity.certManager.issuerRef.name=fleet-ca",
			"--set", "identity.certManager.issuerRef.kind=ClusterIssuer", "--set", "publicEndpoint=https://10.0.1.10:30090", "--set", "identity.hosts={edge-1.example.com}"},
		check: func(t *testing.T, r rendered) {
			cert := r.must(t, "Certificate", identityName)
			checkIdentityCertificate(t, cert.u.Object, "fleet-ca", "ClusterIssuer")
			if ips := unstructuredStrings(cert.u.Object, "spec", "ipAddresses"); !slices.Equal(ips, []string{"10.0.1.10"}) {
				t.Errorf("identity ipAddresses %q, want the public endpoint's 10.0.1.10", ips)
			}
			if dns := unstructuredStrings(cert.u.Object, "spec", "dnsNames"); !slices.Contains(dns, "edge-1.example.com") || !slices.Contains(dns, locatorName+"."+namespace+".svc") {
				t.Errorf("identity dnsNames %q lack identity.hosts or the locator Service", dns)
			}
			if n := len(r.ofKind("Issuer")); n != 0 {
				t.Errorf("certManager mode with an issuerRef renders %d Issuers, want none", n)
			}
		},
	},
	{
		name: "identity by cert-manager from a CA of its own",
		args: []string{"--set", "identity.mode=certManager", "--set", "identity.mspId=Edge1MSP"},
		check: func(t *testing.T, r rendered) {
			r.must(t, "Issuer", identityName+"-selfsigned")
			ca := r.must(t, "Certificate", identityName+"-ca")
			if isCA, _ := walk(ca.u.Object, "spec", "isCA"); isCA != true {
				t.Error("the generated identity CA's certificate is not a CA")
			}
			r.must(t, "Issuer", identityName+"-ca")
			checkIdentityCertificate(t, r.must(t, "Certificate", identityName).u.Object, identityName+"-ca", "Issuer")
		},
	},
	{
		name: "identity self-signed by the descheduler with trusted CAs",
		args: []string{"--set", "identity.mode=selfSigned", "--set", "identity.mspId=Edge1MSP", "--set", "identity.trustedCAs=" + testTrustedCAs},
		check: func(t *testing.T, r rendered) {
			if n := len(r.ofKind("Issuer")) + len(r.ofKind("Certificate")); n != 0 {
				t.Errorf("self-signed identity renders %d cert-manager objects, want none", n)
			}
			args := containerArgs(t, r, deschedulerName, "descheduler")
			for _, want := range []string{"--self-signed-identity", "--self-signed-identity-dir=/etc/edgemigrate/identity", "--self-signed-msp-id=Edge1MSP",
				"--tls-ca-file=/etc/edgemigrate/trust/ca.crt"} {
				if !slices.Contains(args, want) {
					t.Errorf("descheduler args %q lack %s", args, want)
				}
			}
			d := deployment(t, r, deschedulerName)
			if got := secretVolumes(d); len(got) != 0 {
				t.Errorf("self-signed mode mounts Secrets %q, want none (the descheduler writes the files)", got)
			}
			cm := r.must(t, "ConfigMap", identityName+"-trust").typed.(*corev1.ConfigMap)
			if got := cm.Data["ca.crt"]; strings.TrimSpace(got) != strings.TrimSpace(testTrustedCAs) {
				t.Errorf("trust bundle %q, want identity.trustedCAs", got)
			}
			role := r.must(t, "Role", identityName).typed.(*rbacv1.Role)
			var got []string
			for _, rule := range role.Rules {
				got = append(got, strings.Join(rule.Verbs, ",")+" "+strings.Join(rule.Resources, ",")+" "+strings.Join(rule.ResourceNames, ","))
			}
			if want := []string{"create secrets ", "get,update secrets " + identitySecret}; !slices.Equal(got, want) {
				t.Errorf("identity Role rules %q, want %q", got, want)
			}
			rb := r.must(t, "RoleBinding", identityName).typed.(*rbacv1.RoleBinding)
			if rb.RoleRef.Name != identityName || len(rb.Subjects) != 1 || rb.Subjects[0].Name != deschedulerName {
				t.Errorf("identity RoleBinding %+v, want the descheduler's account bound to %s", rb, identityName)
			}
		},
	},
	{
		name: "fabric ledger",
		args: []string{"--set", "ledger.backend=fabric", "--set", "ledger.fabric.peer=peer0.org1.example.com:7051",
			"--set", "ledger.fabric.mspId=Org1MSP", "--set", "ledger.fabric.identitySecret=edge-1-fabric"},
		check: func(t *testing.T, r rendered) {
			args := containerArgs(t, r, deschedulerName, "descheduler")
			for _, want := range []string{"--ledger-backend=fabric", "--fabric-peer=peer0.org1.example.com:7051", "--fabric-msp-id=Org1MSP",
				"--fabric-channel=edgemigrate", "--fabric-chaincode=edgemigrate", "--fabric-cert=/etc/edgemigrate/fabric/cert.pem",
				"--fabric-key=/etc/edgemigrate/fabric/key.pem", "--fabric-tls-ca=/etc/edgemigrate/fabric/ca.pem"} {
				if !slices.Contains(args, want) {
					t.Errorf("descheduler args %q lack %s", args, want)
				}
			}
			for _, a := range args {
				if strings.HasPrefix(a, "--ledger-url") {
					t.Errorf("fabric backend still passes %s", a)
				}
			}
			if got := secretVolumes(deployment(t, r, deschedulerName)); !slices.Equal(got, []string{identitySecret, "edge-1-fabric"}) {
				t.Errorf("descheduler mounts Secrets %q, want the cluster identity and the Fabric identity edge-1-fabric", got)
			}
		},
	},
	{
		name: "monitoring and network policies",
		args: []string{"--set", "scheduler.mode=extender", "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus", "--set", "networkPolicy.enabled=true"},
		check: func(t *testing.T, r rendered) {
			monitors := r.ofKind("ServiceMonitor")
			if len(monitors) != 3 {
				t.Fatalf("%d ServiceMonitors, want 3 (webhook, descheduler, extender)", len(monitors))
			}
			for _, m := range monitors {
				if m.u.GetLabels()["release"] != "prometheus" {
					t.Errorf("%s lacks the serviceMonitor.labels: %v", m, m.u.GetLabels())
				}
				sel := unstructuredMap(m.u.Object, "spec", "selector", "matchLabels")
				port := unstructuredString(m.u.Object, "spec", "endpoints", "0", "port")
				if !serviceWithPort(r, sel, port) {
					t.Errorf("%s: no Service labelled %v has a port named %q", m, sel, port)
				}
			}
			policies := r.ofKind("NetworkPolicy")
			if len(policies) != 3 {
				t.Fatalf("%d NetworkPolicies, want one per component", len(policies))
			}
			for _, p := range policies {
				np := p.typed.(*networkingv1.NetworkPolicy)
				if n := len(podTemplates(r, np.Spec.PodSelector.MatchLabels)); n != 1 {
					t.Errorf("NetworkPolicy %s selects %d Deployments, want 1", np.Name, n)
				}
			}
			// The API server must still reach the webhook, clients the locator, Prometheus the extender.
			for name, port := range map[string]int{webhookName: 8443, deschedulerName: 8090, schedulerName: 8889} {
				np := r.must(t, "NetworkPolicy", name).typed.(*networkingv1.NetworkPolicy)
				if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != port {
					t.Errorf("NetworkPolicy %s ingress %+v, want port %d open", name, np.Spec.Ingress, port)
				}
			}
		},
	},
	{
		name: "monitoring and network policies, plugin mode",
		args: []string{"--set", "serviceMonitor.enabled=true", "--set", "networkPolicy.enabled=true"},
		check: func(t *testing.T, r rendered) {
			// No extender, no metrics port: the scheduler's pod serves nothing but its probes.
			if n := len(r.ofKind("ServiceMonitor")); n != 2 {
				t.Errorf("%d ServiceMonitors, want 2 (webhook, descheduler)", n)
			}
			if _, ok := r.get("Service", schedulerName+"-metrics"); ok {
				t.Error("plugin mode renders the extender's metrics Service")
			}
			np := r.must(t, "NetworkPolicy", schedulerName).typed.(*networkingv1.NetworkPolicy)
			if len(np.Spec.Ingress) != 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				t.Errorf("scheduler NetworkPolicy %+v, want all ingress denied", np.Spec)
			}
		},
	},
	{
		name: "extra args and pod metadata",
		args: []string{"--set", "scheduler.mode=extender", "--set", "extender.extraArgs={--logging-format=json,-v=4}", "--set", "webhook.extraArgs={--logging-format=json}",
			"--set", "descheduler.extraArgs={--logging-format=json}", "--set", "scheduler.extraArgs={--kube-api-qps=100}",
			"--set", "commonLabels.team=edge", "--set", "podLabels.tier=control", "--set", "podAnnotations.example\\.com/owner=ops"},
		check: func(t *testing.T, r rendered) {
			for _, tc := range []struct{ deploy, container, want string }{
				{schedulerName, "extender", "-v=4"}, {webhookName, "webhook", "--logging-format=json"},
				{deschedulerName, "descheduler", "--logging-format=json"},
			} {
				args := containerArgs(t, r, tc.deploy, tc.container)
				if args[len(args)-1] != tc.want {
					t.Errorf("%s/%s args %q: want %s last, after the chart's own", tc.deploy, tc.container, args, tc.want)
				}
			}
			if cmd := deployment(t, r, schedulerName).Spec.Template.Spec.Containers[0].Command; cmd[len(cmd)-1] != "--kube-api-qps=100" {
				t.Errorf("kube-scheduler command %q lacks scheduler.extraArgs", cmd)
			}
			for _, o := range r {
				if o.u.GetKind() != "CustomResourceDefinition" && o.u.GetLabels()["team"] != "edge" {
					t.Errorf("%s lacks commonLabels: %v", o, o.u.GetLabels())
				}
			}
			for _, o := range r.ofKind("Deployment") {
				d := o.typed.(*appsv1.Deployment)
				tpl := d.Spec.Template
				if tpl.Labels["tier"] != "control" || tpl.Annotations["example.com/owner"] != "ops" {
					t.Errorf("Deployment %s pods: labels %v annotations %v, want podLabels and podAnnotations", d.Name, tpl.Labels, tpl.Annotations)
				}
				if _, ok := d.Spec.Selector.MatchLabels["tier"]; ok {
					t.Errorf("Deployment %s: podLabels in the selector, which is immutable", d.Name)
				}
			}
			if tpl := deployment(t, r, schedulerName).Spec.Template; tpl.Annotations["checksum/config"] == "" {
				t.Errorf("scheduler pods lost their config checksum beside podAnnotations: %v", tpl.Annotations)
			}
		},
	},
}

// TestTemplate renders the chart for each value set and checks what must hold for all of
// them, then what is particular to each.
func TestTemplate(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := render(t, vs.args...)
			selfSigned := !slices.ContainsFunc(vs.args, func(a string) bool { return strings.HasPrefix(a, "webhook.tls.mode=") })
			checkCommon(t, r)
			checkRBAC(t, withoutIdentityRBAC(r), selfSigned, !slices.Contains(vs.args, "descheduler.policy.namespaces.create=false")) // the identity's own Role is checked by its value set
			checkHosting(t, r)
			checkPods(t, r)
			vs.check(t, r)
		})
	}
}

func checkCommon(t *testing.T, r rendered) {
	t.Helper()
	crds := r.ofKind("CustomResourceDefinition")
	if len(crds) != 1 || crds[0].u.GetName() != "migrations.edgemigrate.io" {
		t.Errorf("CRDs %v, want migrations.edgemigrate.io", crds)
	}
	for _, o := range r {
		if o.u.GetKind() == "CustomResourceDefinition" {
			continue // crds/ is not templated
		}
		if o.typed == nil && !slices.Contains([]string{"Issuer", "Certificate", "ServiceMonitor"}, o.u.GetKind()) {
			t.Errorf("%s: kind unknown to client-go's scheme", o)
		}
		if got := o.u.GetLabels()["app.kubernetes.io/instance"]; got != release {
			t.Errorf("%s: label app.kubernetes.io/instance=%q, want %q (uninstall and selection rely on it)", o, got, release)
		}
		if ns := o.u.GetNamespace(); ns != "" && ns != namespace && key(o) != "kube-system/RoleBinding/"+schedulerName+"-edgemigrate-system-auth-reader" {
			t.Errorf("%s: in namespace %s, outside the release namespace", o, ns)
		}
	}
	// Services select pods that exist and name ports those pods have.
	for _, o := range r.ofKind("Service") {
		svc := o.typed.(*corev1.Service)
		for _, p := range svc.Spec.Ports {
			if !serviceWithPort(r, svc.Spec.Selector, p.TargetPort.String()) {
				t.Errorf("Service %s port %s: no pod template labelled %v has container port %s", svc.Name, p.Name, svc.Spec.Selector, p.TargetPort.String())
			}
		}
	}
	for _, o := range r.ofKind("PodDisruptionBudget") {
		sel := unstructuredMap(o.u.Object, "spec", "selector", "matchLabels")
		if len(podTemplates(r, sel)) != 1 {
			t.Errorf("%s selects %d Deployments, want 1", o, len(podTemplates(r, sel)))
		}
	}
}

// checkHosting: the descheduler reads the rendered policy, which decodes strictly; the
// ValidatingAdmissionPolicy is bound, denies, and applies to the host identity only.
func checkHosting(t *testing.T, r rendered) {
	t.Helper()
	hostingPolicy(t, r)
	d := deployment(t, r, deschedulerName)
	if args := containerArgs(t, r, deschedulerName, "descheduler"); !slices.Contains(args, "--policy-file=/etc/edgemigrate/policy/policy.yaml") {
		t.Errorf("descheduler args %q lack --policy-file", args)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == api.PolicyConfigMap {
			for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
				mounted = mounted || (m.Name == v.Name && m.MountPath == "/etc/edgemigrate/policy")
			}
		}
	}
	if !mounted {
		t.Errorf("descheduler does not mount ConfigMap %s at /etc/edgemigrate/policy", api.PolicyConfigMap)
	}
	vap := r.must(t, "ValidatingAdmissionPolicy", api.HostValidatingPolicy).typed.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if vap.Spec.FailurePolicy == nil || *vap.Spec.FailurePolicy != admissionregistrationv1.Fail || len(vap.Spec.MatchConditions) != 1 ||
		!strings.Contains(vap.Spec.MatchConditions[0].Expression, "':"+api.HostServiceAccount+"'") {
		t.Errorf("ValidatingAdmissionPolicy %s: failurePolicy %v, matchConditions %+v; want Fail and the host identity only", vap.Name, vap.Spec.FailurePolicy, vap.Spec.MatchConditions)
	}
	b := r.must(t, "ValidatingAdmissionPolicyBinding", api.HostValidatingPolicy).typed.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
	if b.Spec.PolicyName != api.HostValidatingPolicy || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) {
		t.Errorf("binding %s: policy %s, actions %v; want %s, Deny", b.Name, b.Spec.PolicyName, b.Spec.ValidationActions, api.HostValidatingPolicy)
	}
}

// hostingPolicy decodes the rendered policy as the descheduler does.
func hostingPolicy(t *testing.T, r rendered) *policy.Config {
	t.Helper()
	cm := r.must(t, "ConfigMap", api.PolicyConfigMap).typed.(*corev1.ConfigMap)
	c, err := policy.Parse([]byte(cm.Data["policy.yaml"]))
	if err != nil {
		t.Fatalf("ConfigMap %s: %v", api.PolicyConfigMap, err)
	}
	return c
}

// validations are the ValidatingAdmissionPolicy's expressions, one a line.
func validations(t *testing.T, r rendered) string {
	t.Helper()
	vap := r.must(t, "ValidatingAdmissionPolicy", api.HostValidatingPolicy).typed.(*admissionregistrationv1.ValidatingAdmissionPolicy)
	var out []string
	for _, v := range vap.Spec.Validations {
		out = append(out, v.Expression+" // "+v.Message)
	}
	return strings.Join(out, "\n")
}

// checkRBAC: every role grants exactly what wantRoles lists; no ClusterRole touches Secrets;
// every binding is one of wantBindings and binds the component's own ServiceAccount.
func checkRBAC(t *testing.T, r rendered, selfSigned, createNamespaces bool) {
	t.Helper()
	want := wantRoles(selfSigned, createNamespaces)
	seen := map[string]bool{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, o := range r.ofKind(kind) {
			var policy []rbacv1.PolicyRule
			if cr, ok := o.typed.(*rbacv1.ClusterRole); ok {
				policy = cr.Rules
				for _, p := range policy {
					// The host role is bound per hosted namespace only (checkHosting).
					if (slices.Contains(p.Resources, "secrets") && cr.Name != api.HostClusterRole) || slices.Contains(p.Resources, "*") {
						t.Errorf("ClusterRole %s grants %v on secrets cluster-wide", cr.Name, p.Verbs)
					}
				}
			} else {
				policy = o.typed.(*rbacv1.Role).Rules
			}
			k := key(o)
			seen[k] = true
			wantRules, ok := want[k]
			if !ok {
				t.Errorf("%s: a role not in the table of allowed roles", k)
				continue
			}
			got := expand(policy)
			for _, g := range got {
				if g.verb == "*" || g.resource == "*" || g.group == "*" {
					t.Errorf("%s: wildcard in %s", k, g)
				}
				if !slices.Contains(wantRules, g) {
					t.Errorf("%s grants %s, which is not in its table", k, g)
				}
			}
			for _, w := range wantRules {
				if !slices.Contains(got, w) {
					t.Errorf("%s lacks %s, which the component needs", k, w)
				}
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s not rendered", k)
		}
	}
	bindings := 0
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range r.ofKind(kind) {
			bindings++
			var ref rbacv1.RoleRef
			var subjects []rbacv1.Subject
			switch b := o.typed.(type) {
			case *rbacv1.ClusterRoleBinding:
				ref, subjects = b.RoleRef, b.Subjects
			case *rbacv1.RoleBinding:
				ref, subjects = b.RoleRef, b.Subjects
			}
			w, ok := wantBindings[key(o)]
			if !ok {
				t.Errorf("%s: a binding not in the table", key(o))
				continue
			}
			if got := ref.Kind + "/" + ref.Name; got != w.roleRef {
				t.Errorf("%s grants %s, want %s", key(o), got, w.roleRef)
			}
			wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: w.subject, Namespace: namespace}}
			if !reflect.DeepEqual(subjects, wantSubject) {
				t.Errorf("%s binds %+v, want %+v", key(o), subjects, wantSubject)
			}
			if _, ok := r.get("ServiceAccount", w.subject); !ok {
				t.Errorf("%s binds ServiceAccount %s, which is not rendered", key(o), w.subject)
			}
		}
	}
	if bindings != len(wantBindings) {
		t.Errorf("%d bindings rendered, want %d", bindings, len(wantBindings))
	}
}

// checkPods: every container of every pod is hardened and has resources.
func checkPods(t *testing.T, r rendered) {
	t.Helper()
	specs := map[string]corev1.PodSpec{}
	for _, o := range r.ofKind("Deployment") {
		d := o.typed.(*appsv1.Deployment)
		specs[key(o)] = d.Spec.Template.Spec
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its pod template", d.Name)
		}
		sa := d.Spec.Template.Spec.ServiceAccountName
		if _, ok := r.get("ServiceAccount", sa); !ok || sa == "" || sa == "default" {
			t.Errorf("Deployment %s runs as ServiceAccount %q, not one of its own", d.Name, sa)
		}
	}
	for _, o := range r.ofKind("Pod") {
		specs[key(o)] = o.typed.(*corev1.Pod).Spec
	}
	if len(specs) < 3 {
		t.Fatalf("%d pod specs rendered, want at least the scheduler, webhook and descheduler", len(specs))
	}
	for name, spec := range specs {
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s shares a host namespace", name)
		}
		psc := spec.SecurityContext
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: want seccompProfile RuntimeDefault", name)
		}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			where := name + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			nonRoot := sc.RunAsNonRoot
			if nonRoot == nil && psc != nil {
				nonRoot = psc.RunAsNonRoot
			}
			if nonRoot == nil || !*nonRoot {
				t.Errorf("%s: runAsNonRoot not set", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem not set", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
				t.Errorf("%s: capabilities %+v, want drop ALL and add nothing", where, sc.Capabilities)
			}
			req := c.Resources.Requests
			if req.Cpu().IsZero() || req.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: resources %+v, want cpu and memory requests and a memory limit", where, c.Resources)
			}
		}
	}
}

// wantTLSMode checks the webhook's TLS wiring: its args hold flag, its configuration's
// caBundle is caBundle (base64), and a serving Secret is mounted unless self-signed. It
// returns the mounted Secret's name.
func wantTLSMode(t *testing.T, r rendered, flag, caBundle string) string {
	t.Helper()
	args := containerArgs(t, r, webhookName, "webhook")
	if !slices.Contains(args, flag) {
		t.Errorf("webhook args %q lack %s", args, flag)
	}
	mwc := webhookConfig(t, r)
	if got := base64.StdEncoding.EncodeToString(mwc.Webhooks[0].ClientConfig.CABundle); got != caBundle {
		t.Errorf("caBundle %q, want %q", got, caBundle)
	}
	secrets := secretVolumes(deployment(t, r, webhookName))
	if flag == "--self-signed" {
		if len(secrets) != 0 {
			t.Errorf("self-signed webhook mounts Secrets %q", secrets)
		}
		return ""
	}
	if len(secrets) != 1 {
		t.Fatalf("webhook mounts Secrets %q, want one serving Secret", secrets)
	}
	return secrets[0]
}

// TestSchema: bad values are refused before anything is rendered, naming the bad value.
func TestSchema(t *testing.T) {
	// Each accepted value shows that its refused neighbours fail for the value itself.
	for _, ok := range [][]string{
		{"clusterId=edge-2"}, {"location.latitude=-90", "location.longitude=180"}, {"ledger.backend=remote"},
		// --set passes decimals as strings, integers as numbers: both are checked.
		{"location.latitude=-89.999", "location.longitude=-179.5"},
		{"publicEndpoint=https://edge-1.example.com:30090"},
		{"identity.mode=selfSigned", "identity.mspId=Edge1MSP"}, {"identity.mode=certManager", "identity.mspId=Edge1MSP"},
		{"identity.mode=certManager", "identity.mspId=Edge1MSP", "identity.certManager.issuerRef.name=fleet-ca"},
		{"fullnameOverride=em"}, {"scheduler.mode=extender"}, {"webhook.extraArgs[0]=--logging-format=json"}, {"rbac.create=false", "serviceAccount.create=false"},
	} {
		var args []string
		for _, s := range ok {
			args = append(args, "--set", s)
		}
		if _, err := helm(t, templateArgs(args...)...); err != nil {
			t.Errorf("valid values %v refused: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		set  []string
		want string // in the error: where and why
	}{
		{[]string{"clusterId=BAD_ID"}, "at '/clusterId': 'BAD_ID' does not match pattern"},
		{[]string{"clusterId=edge.1"}, "at '/clusterId'"},
		{[]string{"clusterId=" + strings.Repeat("a", 41)}, "at '/clusterId': maxLength: got 41, want 40"},
		{[]string{"location.latitude=91"}, "at '/location/latitude': maximum: got 91, want 90"},
		{[]string{"location.longitude=-180.5"}, "at '/location/longitude': '-180.5' does not match pattern"},
		{[]string{"location.latitude=90.01"}, "at '/location/latitude'"},
		{[]string{"coverageRadius=0"}, "at '/coverageRadius'"},
		{[]string{"ledger.backend=ipfs"}, "at '/ledger/backend': value must be one of 'remote', 'fabric'"},
		{[]string{"scheduler.mode=both"}, "at '/scheduler/mode': value must be one of 'plugin', 'extender'"},
		{[]string{"ledger.backend=fabric"}, "at '/ledger/fabric/mspId'"},
		{[]string{"ledger.backend=fabric", "ledger.fabric.mspId=Org1MSP", "ledger.fabric.peer=no-port"}, "at '/ledger/fabric/peer'"},
		{[]string{"webhook.tls.mode=vault"}, "at '/webhook/tls/mode'"},
		{[]string{"webhook.tls.mode=secret", "webhook.tls.secret.name=s"}, "at '/webhook/tls/secret/caBundle'"},
		{[]string{"webhook.tls.mode=secret", "webhook.tls.secret.caBundle=" + testCABundle}, "at '/webhook/tls/secret/name'"},
		{[]string{"webhook.tls.secretName=s"}, "additional properties 'secretName' not allowed"},
		{[]string{"fullnameOverride=Bad_Name"}, "at '/fullnameOverride'"},
		{[]string{"webhook.extraArgs[0]="}, "at '/webhook/extraArgs/0'"},
		{[]string{"rbac.create=maybe"}, "at '/rbac/create'"},
		{[]string{"publicEndpoint=10.0.0.5:8090"}, "at '/publicEndpoint'"},
		// Mutual TLS between clusters: plain HTTP endpoints, identity modes.
		{[]string{"publicEndpoint=http://10.0.0.5:30090"}, "at '/publicEndpoint'"},
		{[]string{"ledger.remote.url=http://10.0.0.9:8070"}, "at '/ledger/remote/url'"},
		{[]string{"identity.mode=vault"}, "at '/identity/mode'"},
		{[]string{"identity.mode=selfSigned"}, "at '/identity/mspId'"},
		{[]string{"identity.trustedCAs=not a certificate"}, "at '/identity/trustedCAs'"},
		{[]string{"jetson.policy=random"}, "at '/jetson/policy'"},
		{[]string{"descheduler.offloadAfter=soon"}, "at '/descheduler/offloadAfter'"},
		{[]string{"clusterID=edge-1"}, "additional properties 'clusterID' not allowed"},
	} {
		t.Run(strings.Join(tc.set, ","), func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, templateArgs(args...)...)
			if err == nil {
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestLint: helm lint --strict passes for the value sets.
func TestLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chartDir}, vs.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestSchedulerConfigManifestUpToDate: manifests/scheduler-config.yaml (extender mode) and
// manifests/scheduler-plugin-config.yaml (plugin mode) are the chart's
// KubeSchedulerConfiguration as `make manifests` writes them (a comment header, then the
// ConfigMap's data), and what programs embed decodes to it.
func TestSchedulerConfigManifestUpToDate(t *testing.T) {
	for _, tc := range []struct {
		mode, path string
		embedded   func() (*schedconfig.KubeSchedulerConfiguration, error)
	}{
		{"extender", schedulerYAML, manifests.SchedulerConfig},
		{"plugin", pluginYAML, manifests.SchedulerPluginConfig},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			r := render(t, "--set", "scheduler.mode="+tc.mode)
			cm := r.must(t, "ConfigMap", schedulerName).typed.(*corev1.ConfigMap)
			data := cm.Data["scheduler-config.yaml"]
			file, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			header, ok := strings.CutSuffix(string(file), data)
			if !ok || data == "" {
				t.Fatalf("%s is stale: run `make manifests`", tc.path)
			}
			for line := range strings.Lines(header) {
				if !strings.HasPrefix(line, "#") {
					t.Errorf("%s: header line %q is not a comment", tc.path, line)
				}
			}
			got, err := tc.embedded()
			if err != nil {
				t.Fatal(err)
			}
			if want := schedulerConfig(t, r); !reflect.DeepEqual(got, want) {
				t.Errorf("embedded %s %+v, want the chart's %+v", tc.path, got, want)
			}
			d := deployment(t, r, schedulerName)
			if cmd := d.Spec.Template.Spec.Containers[0].Command; !slices.Contains(cmd, "--config=/etc/edgemigrate-scheduler/scheduler-config.yaml") {
				t.Errorf("scheduler command %q does not read the ConfigMap", cmd)
			}
			if tc.mode == "extender" {
				// The URL reaches the sidecar.
				if args := containerArgs(t, r, schedulerName, "extender"); got.Extenders[0].URLPrefix != "http://127.0.0.1:8888" || !slices.Contains(args, "--listen-address=127.0.0.1:8888") {
					t.Errorf("extender args %q: not listening where urlPrefix %s points", args, got.Extenders[0].URLPrefix)
				}
			}
		})
	}
}

// schedulerConfig decodes, strictly, the KubeSchedulerConfiguration in the scheduler's ConfigMap.
func schedulerConfig(t *testing.T, r rendered) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	cm := r.must(t, "ConfigMap", schedulerName).typed.(*corev1.ConfigMap)
	var cfg schedconfig.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict([]byte(cm.Data["scheduler-config.yaml"]), &cfg); err != nil {
		t.Fatalf("decoding the chart's scheduler configuration: %v", err)
	}
	return &cfg
}

// wantPluginMode: the scheduler pod runs edgemigrate-scheduler alone (no extender sidecar,
// no metrics port), on the secure port with the probes, and its configuration enables the
// Jetson plugin with args, in the release's lease namespace.
func wantPluginMode(t *testing.T, r rendered, args map[string]string) {
	t.Helper()
	spec := deployment(t, r, schedulerName).Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("plugin mode: containers %+v, want edgemigrate-scheduler alone", spec.Containers)
	}
	c := spec.Containers[0]
	if !strings.HasPrefix(c.Image, "edgemigrate.local/edgemigrate-scheduler:") || len(c.Command) < 3 || c.Command[0] != "edgemigrate-scheduler" ||
		!slices.Contains(c.Command, "--secure-port=10259") {
		t.Errorf("plugin mode: image %q command %q, want edgemigrate-scheduler on port 10259", c.Image, c.Command)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 10259 || c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("plugin mode: ports %+v probes %v %v, want 10259 and both probes", c.Ports, c.LivenessProbe, c.ReadinessProbe)
	}
	cfg := schedulerConfig(t, r)
	if cfg.LeaderElection.ResourceNamespace != namespace || len(cfg.Extenders) != 0 || len(cfg.Profiles) != 1 {
		t.Fatalf("plugin-mode config: lease namespace %q, %d extenders, %d profiles", cfg.LeaderElection.ResourceNamespace, len(cfg.Extenders), len(cfg.Profiles))
	}
	prof := cfg.Profiles[0]
	if prof.Plugins == nil || len(prof.Plugins.MultiPoint.Enabled) != 1 || prof.Plugins.MultiPoint.Enabled[0].Name != api.SchedulerPluginName ||
		len(prof.PluginConfig) != 1 || prof.PluginConfig[0].Name != api.SchedulerPluginName {
		t.Fatalf("plugin-mode profile %+v, want %s enabled and configured", prof, api.SchedulerPluginName)
	}
	var got map[string]string
	if err := json.Unmarshal(prof.PluginConfig[0].Args.Raw, &got); err != nil || !maps.Equal(got, args) {
		t.Errorf("%s args %s (%v), want %v", api.SchedulerPluginName, prof.PluginConfig[0].Args.Raw, err, args)
	}
}

// TestWebhookManifestUpToDate: manifests/webhook.yaml is the chart's templates/webhook.yaml
// as `make manifests` renders it (release edgemigrate in edgemigrate-system), after a header
// of comments and the Namespace.
func TestWebhookManifestUpToDate(t *testing.T) {
	checkRenderedFile(t, webhookYAML, "--show-only", "templates/webhook.yaml")
	// What programs embed is the chart's configuration.
	got, err := manifests.WebhookConfiguration()
	if err != nil {
		t.Fatal(err)
	}
	want := webhookConfig(t, render(t))
	if got.Name != want.Name || !reflect.DeepEqual(got.Webhooks, want.Webhooks) {
		t.Errorf("manifests.WebhookConfiguration() %s %+v, want the chart's %s %+v", got.Name, got.Webhooks, want.Name, want.Webhooks)
	}
}

// Files that `make manifests` writes from the chart.
const (
	installYAML   = "../../manifests/install/edgemigrate.yaml"
	schedulerYAML = "../../manifests/scheduler-config.yaml"
	pluginYAML    = "../../manifests/scheduler-plugin-config.yaml"
	webhookYAML   = "../../manifests/webhook.yaml"
)

// TestInstallManifestsUpToDate: manifests/install is what `make manifests` renders now.
func TestInstallManifestsUpToDate(t *testing.T) {
	checkRenderedFile(t, installYAML, "--skip-tests")
}

// checkRenderedFile: path is a header of comments and the release's Namespace, then what
// `helm template` renders now with args, as `make manifests` writes it.
func checkRenderedFile(t *testing.T, path string, args ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "\n---\n# Source: ")
	if i < 0 {
		t.Fatalf("%s holds no rendered chart", path)
	}
	header, body := data[:i+1], data[i+1:]
	fresh, err := helm(t, templateArgs(args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != string(fresh) {
		t.Errorf("%s is stale: run `make manifests`", path)
	}
	ns, err := decode(header)
	if err != nil || len(ns) != 1 || key(ns[0]) != "Namespace/"+namespace {
		t.Errorf("%s header: want the Namespace %s, got %v (%v)", path, namespace, ns, err)
	}
}

// TestCRDMatchesManifest: the chart's crds/ carries manifests/crds unchanged.
func TestCRDMatchesManifest(t *testing.T) {
	const name = "edgemigrate.io_migrations.yaml"
	want, err := os.ReadFile("../../manifests/crds/" + name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(chartDir + "/crds/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("charts/edgemigrate/crds/%s differs from manifests/crds/%s: run `make manifests`", name, name)
	}
}

func deployment(t *testing.T, r rendered, name string) *appsv1.Deployment {
	t.Helper()
	return r.must(t, "Deployment", name).typed.(*appsv1.Deployment)
}

func containerArgs(t *testing.T, r rendered, deploy, container string) []string {
	t.Helper()
	for _, c := range deployment(t, r, deploy).Spec.Template.Spec.Containers {
		if c.Name == container {
			return c.Args
		}
	}
	t.Fatalf("Deployment %s has no container %s", deploy, container)
	return nil
}

func webhookConfig(t *testing.T, r rendered) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	return r.must(t, "MutatingWebhookConfiguration", webhookName).typed.(*admissionregistrationv1.MutatingWebhookConfiguration)
}

// testTrustedCAs is a PEM bundle as identity.trustedCAs takes it (the chart does not parse it).
const testTrustedCAs = "-----BEGIN CERTIFICATE-----\nMIIBfleet\n-----END CERTIFICATE-----"

// withoutIdentityRBAC is r without the self-signed identity's Role and RoleBinding.
func withoutIdentityRBAC(r rendered) rendered {
	return slices.DeleteFunc(slices.Clone(r), func(o object) bool {
		return o.u.GetName() == identityName && (o.u.GetKind() == "Role" || o.u.GetKind() == "RoleBinding")
	})
}

// checkIdentityCertificate checks the cluster identity Certificate: subject, usages, Secret, issuer.
func checkIdentityCertificate(t *testing.T, obj map[string]any, issuer, kind string) {
	t.Helper()
	if got := unstructuredString(obj, "spec", "commonName"); got != "edge-1" {
		t.Errorf("identity commonName %q, want the cluster id edge-1", got)
	}
	if got := unstructuredStrings(obj, "spec", "subject", "organizations"); !slices.Equal(got, []string{"Edge1MSP"}) {
		t.Errorf("identity organizations %q, want the MSP id Edge1MSP", got)
	}
	if got := unstructuredStrings(obj, "spec", "usages"); !slices.Contains(got, "server auth") || !slices.Contains(got, "client auth") {
		t.Errorf("identity usages %q, want server and client auth", got)
	}
	if got := unstructuredString(obj, "spec", "secretName"); got != identitySecret {
		t.Errorf("identity Secret %q, want %s", got, identitySecret)
	}
	if got, gotKind := unstructuredString(obj, "spec", "issuerRef", "name"), unstructuredString(obj, "spec", "issuerRef", "kind"); got != issuer || gotKind != kind {
		t.Errorf("identity issuer %s %q, want %s %q", gotKind, got, kind, issuer)
	}
}

func secretVolumes(d *appsv1.Deployment) []string {
	var out []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
	}
	return out
}

// podTemplates returns the Deployments' pod templates whose labels sel selects.
func podTemplates(r rendered, sel map[string]string) []corev1.PodTemplateSpec {
	var out []corev1.PodTemplateSpec
	if len(sel) == 0 {
		return nil
	}
	for _, o := range r.ofKind("Deployment") {
		tpl := o.typed.(*appsv1.Deployment).Spec.Template
		if labels.SelectorFromSet(sel).Matches(labels.Set(tpl.Labels)) {
			out = append(out, tpl)
		}
	}
	return out
}

// serviceWithPort: a pod template selected by sel has a container port named (or numbered) port,
// or, for ServiceMonitors, a Service labelled sel has a port of that name.
func serviceWithPort(r rendered, sel map[string]string, port string) bool {
	for _, tpl := range podTemplates(r, sel) {
		for _, c := range tpl.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
					return true
				}
			}
		}
	}
	for _, o := range r.ofKind("Service") {
		svc := o.typed.(*corev1.Service)
		if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == port {
				return true
			}
		}
	}
	return false
}

func unstructuredString(obj map[string]any, path ...string) string {
	v, _ := walk(obj, path...)
	s, _ := v.(string)
	return s
}

func unstructuredStrings(obj map[string]any, path ...string) []string {
	v, _ := walk(obj, path...)
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, isString := e.(string); isString {
			out = append(out, s)
		}
	}
	return out
}

func unstructuredMap(obj map[string]any, path ...string) map[string]string {
	v, _ := walk(obj, path...)
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, e := range maps.All(m) {
		out[k] = fmt.Sprint(e)
	}
	return out
}

// walk follows keys through maps and decimal indexes through lists.
func walk(obj any, path ...string) (any, bool) {
	for _, p := range path {
		switch v := obj.(type) {
		case map[string]any:
			obj = v[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			obj = v[i]
		default:
			return nil, false
		}
	}
	return obj, obj != nil
}

// TestPlacement: a component's own nodeSelector replaces the chart-wide one; chart-wide
// tolerations reach every component (a control plane of tainted Jetsons).
func TestPlacement(t *testing.T) {
	r := render(t, "--set", `scheduler.nodeSelector.kubernetes\.io/arch=amd64`,
		"--set", "tolerations[0].key=node-role.kubernetes.io/control-plane", "--set", "tolerations[0].effect=NoSchedule")
	for _, tc := range []struct {
		deploy string
		want   map[string]string
	}{
		{schedulerName, map[string]string{"kubernetes.io/arch": "amd64"}},
		{webhookName, map[string]string{"kubernetes.io/os": "linux"}},
		{deschedulerName, map[string]string{"kubernetes.io/os": "linux"}},
	} {
		spec := deployment(t, r, tc.deploy).Spec.Template.Spec
		if !maps.Equal(spec.NodeSelector, tc.want) {
			t.Errorf("%s nodeSelector %v, want %v", tc.deploy, spec.NodeSelector, tc.want)
		}
		if len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "node-role.kubernetes.io/control-plane" || spec.Tolerations[0].Effect != corev1.TaintEffectNoSchedule {
			t.Errorf("%s tolerations %+v, want the control-plane taint", tc.deploy, spec.Tolerations)
		}
	}
}

// TestPlacementAffinityAndPriority: a component's own affinity and priorityClassName replace
// the chart-wide ones, as its nodeSelector does.
func TestPlacementAffinityAndPriority(t *testing.T) {
	r := render(t, "--set", "priorityClassName=edge-critical", "--set", "webhook.priorityClassName=system-cluster-critical",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
		"--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
		"--set", "descheduler.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=1",
		"--set", "descheduler.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname")
	for _, tc := range []struct {
		deploy, priority string
		nodeAffinity     bool
	}{
		{schedulerName, "edge-critical", true},
		{webhookName, "system-cluster-critical", true},
		{deschedulerName, "edge-critical", false},
	} {
		spec := deployment(t, r, tc.deploy).Spec.Template.Spec
		if spec.PriorityClassName != tc.priority {
			t.Errorf("%s priorityClassName %q, want %q", tc.deploy, spec.PriorityClassName, tc.priority)
		}
		if spec.Affinity == nil || (spec.Affinity.NodeAffinity != nil) != tc.nodeAffinity || (spec.Affinity.PodAntiAffinity != nil) == tc.nodeAffinity {
			t.Errorf("%s affinity %+v: want the chart-wide node affinity %v, else its own pod anti-affinity", tc.deploy, spec.Affinity, tc.nodeAffinity)
		}
	}
}

// TestNamesAndAccounts: nameOverride and fullnameOverride rename every object consistently
// (the webhook's flags name its own configuration); serviceAccount.create=false renders no
// ServiceAccount and runs the pods as the named ones; rbac.create=false renders no role or
// binding.
func TestNamesAndAccounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		// base is the expected <fullname>; accounts maps component to its ServiceAccount.
		base      string
		accounts  map[string]string
		createSAs bool
		rbac      bool
	}{
		{name: "fullnameOverride", set: []string{"fullnameOverride=em"}, base: "em", createSAs: true, rbac: true},
		{name: "nameOverride", set: []string{"nameOverride=jet"}, base: "edgemigrate-jet", createSAs: true, rbac: true},
		{name: "no RBAC", set: []string{"rbac.create=false"}, base: "edgemigrate", createSAs: true},
		{name: "existing ServiceAccounts", set: []string{"serviceAccount.create=false", "serviceAccount.name.webhook=hook-sa"}, base: "edgemigrate",
			accounts: map[string]string{"webhook": "hook-sa"}, rbac: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			r := render(t, args...)
			for _, component := range []string{"scheduler", "webhook", "descheduler"} {
				d := deployment(t, r, tc.base+"-"+component)
				sa := tc.accounts[component]
				if sa == "" {
					sa = tc.base + "-" + component
				}
				if got := d.Spec.Template.Spec.ServiceAccountName; got != sa {
					t.Errorf("%s runs as %q, want %q", d.Name, got, sa)
				}
				if _, ok := r.get("ServiceAccount", sa); ok != tc.createSAs {
					t.Errorf("ServiceAccount %s rendered: %v, want %v", sa, ok, tc.createSAs)
				}
			}
			webhookArgs := containerArgs(t, r, tc.base+"-webhook", "webhook")
			if mwc := r.must(t, "MutatingWebhookConfiguration", tc.base+"-webhook"); !slices.Contains(webhookArgs, "--webhook-config-name="+mwc.u.GetName()) {
				t.Errorf("webhook args %q do not name its configuration %s", webhookArgs, mwc.u.GetName())
			}
			var roles, bindings int
			for _, kind := range []string{"ClusterRole", "Role"} {
				roles += len(r.ofKind(kind))
			}
			for _, o := range slices.Concat(r.ofKind("ClusterRoleBinding"), r.ofKind("RoleBinding")) {
				bindings++
				var subjects []rbacv1.Subject
				switch b := o.typed.(type) {
				case *rbacv1.ClusterRoleBinding:
					subjects = b.Subjects
				case *rbacv1.RoleBinding:
					subjects = b.Subjects
				}
				for _, s := range subjects {
					if !strings.HasPrefix(s.Name, tc.base+"-") && !slices.Contains(slices.Collect(maps.Values(tc.accounts)), s.Name) {
						t.Errorf("%s binds %s, none of this release's ServiceAccounts", key(o), s.Name)
					}
				}
			}
			if tc.rbac && (roles != len(wantRoles(true, true)) || bindings != len(wantBindings)) {
				t.Errorf("%d roles and %d bindings, want %d and %d", roles, bindings, len(wantRoles(true, true)), len(wantBindings))
			}
			if !tc.rbac && roles+bindings != 0 {
				t.Errorf("rbac.create=false renders %d roles and %d bindings", roles, bindings)
			}
			for _, o := range r {
				// The hosting objects have the fixed names the descheduler looks for (api/trust.go).
				fixed := []string{api.PolicyConfigMap, api.HostClusterRole, api.HostValidatingPolicy}
				if name := o.u.GetName(); o.u.GetKind() != "CustomResourceDefinition" && !slices.Contains(fixed, name) && !strings.HasPrefix(name, tc.base+"-") && !slices.Contains(slices.Collect(maps.Values(tc.accounts)), name) {
					t.Errorf("%s: not named after %s", o, tc.base)
				}
			}
		})
	}
}
