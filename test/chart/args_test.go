package chart

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/edgemigrate/edgemigrate/cmd/edgemigrate/app"
	"github.com/edgemigrate/edgemigrate/descheduler"
	"github.com/edgemigrate/edgemigrate/webhook"
)

// subcommands validate a command line with the options and checks of the real binary.
var subcommands = map[string]func(fs *pflag.FlagSet) func() error{
	"webhook": func(fs *pflag.FlagSet) func() error {
		o := webhook.NewOptions()
		o.AddFlags(fs)
		return o.Validate
	},
	"descheduler": func(fs *pflag.FlagSet) func() error {
		o := descheduler.NewOptions()
		o.AddFlags(fs)
		return o.Validate
	},
	"extender": func(fs *pflag.FlagSet) func() error {
		o := app.NewExtenderOptions()
		o.AddFlags(fs)
		return func() error {
			_, err := o.Config()
			return err
		}
	},
}

// TestArgsAcceptedByBinary: for every value set, each edgemigrate container's command line
// parses with the binary's own flags and passes its validation, so a renamed or new
// required flag fails here rather than in a crash-looping pod.
func TestArgsAcceptedByBinary(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := render(t, vs.args...)
			seen := map[string]bool{}
			for _, o := range r.ofKind("Deployment") {
				spec := deployment(t, r, o.u.GetName()).Spec.Template.Spec
				for _, c := range spec.Containers {
					if !strings.Contains(c.Image, "/edgemigrate:") {
						continue
					}
					if len(c.Args) == 0 {
						t.Fatalf("%s/%s: no subcommand", o.u.GetName(), c.Name)
					}
					newFlags, ok := subcommands[c.Args[0]]
					if !ok {
						t.Fatalf("%s/%s runs unknown subcommand %q", o.u.GetName(), c.Name, c.Args[0])
					}
					seen[c.Args[0]] = true
					fs := pflag.NewFlagSet(c.Args[0], pflag.ContinueOnError)
					validate := newFlags(fs)
					// The root command's flags (logging) apply to every subcommand.
					fs.AddFlagSet(app.NewCommand().PersistentFlags())
					if err := fs.Parse(expandEnv(c.Args[1:], c.Env)); err != nil {
						t.Errorf("%s/%s: %v", o.u.GetName(), c.Name, err)
						continue
					}
					if fs.NArg() != 0 {
						t.Errorf("%s/%s: stray arguments %q", o.u.GetName(), c.Name, fs.Args())
					}
					if err := validate(); err != nil {
						t.Errorf("%s/%s: the binary would refuse its arguments: %v", o.u.GetName(), c.Name, err)
					}
				}
			}
			// The extender runs in extender mode only.
			extenderMode := slices.Contains(vs.args, "scheduler.mode=extender")
			want := len(subcommands)
			if !extenderMode {
				want--
			}
			if len(seen) != want || seen["extender"] != extenderMode {
				t.Errorf("subcommands run: %v, want %d of %d", seen, want, len(subcommands))
			}
		})
	}
}

// expandEnv does what the kubelet does to $(VAR) in args, with the pod's namespace for
// fieldRefs (the only kind the chart uses).
func expandEnv(args []string, env []corev1.EnvVar) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for _, e := range env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
				v = namespace
			}
			a = strings.ReplaceAll(a, "$("+e.Name+")", v)
		}
		out[i] = a
	}
	return out
}

// TestHelmTestPod: the `helm test` pod runs the components' image with `edgemigrate check`,
// whose real command accepts its arguments, on the webhook's and the locator's Services.
func TestHelmTestPod(t *testing.T) {
	r := render(t, "--set", "image.repository=registry.example.com/team/edgemigrate", "--set", "image.tag=v9")
	var pods []*corev1.Pod
	for _, o := range r.ofKind("Pod") {
		if p := o.typed.(*corev1.Pod); p.Annotations["helm.sh/hook"] == "test" {
			pods = append(pods, p)
		}
	}
	if len(pods) != 1 || len(pods[0].Spec.Containers) != 1 {
		t.Fatalf("%d helm test pods, want one with one container", len(pods))
	}
	c := pods[0].Spec.Containers[0]
	if want := "registry.example.com/team/edgemigrate:v9"; c.Image != want || len(c.Command) != 0 {
		t.Errorf("test pod runs %q (command %q), want the components' image %q and its entrypoint", c.Image, c.Command, want)
	}
	cmd, rest, err := app.NewCommand().Find(c.Args)
	if err != nil || cmd.Name() != "check" {
		t.Fatalf("test pod's args %q: subcommand %v, %v; want check", c.Args, cmd.Name(), err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("test pod's args %q: %v", c.Args, err)
	}
	urls := cmd.Flags().Args()
	want := []string{
		"https://" + webhookName + "." + namespace + ".svc/readyz",
		"https://" + locatorName + "." + namespace + ".svc:8090/healthz",
	}
	if !slices.Equal(urls, want) {
		t.Errorf("test pod checks %q, want %q", urls, want)
	}
}
