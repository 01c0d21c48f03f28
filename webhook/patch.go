package webhook

import (
	"encoding/json"
	"slices"
	"strings"
)

// patchOp is one RFC 6902 operation. The webhook only ever adds: it never removes or
// rewrites what the pod's author or another webhook wrote.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// patchBuilder collects the additions to one pod.
type patchBuilder struct {
	hasAnnotations bool // the pod already has a metadata.annotations object
	schedulerName  string
	annotations    map[string]string
}

// annotate adds key=value unless the pod already has key.
func (b *patchBuilder) annotate(existing map[string]string, key, value string) {
	if _, ok := existing[key]; ok {
		return
	}
	if b.annotations == nil {
		b.annotations = make(map[string]string, 6)
	}
	b.annotations[key] = value
}

func (b *patchBuilder) empty() bool { return b.schedulerName == "" && len(b.annotations) == 0 }

// marshal returns the JSONPatch, operations in a stable order.
func (b *patchBuilder) marshal() ([]byte, error) {
	ops := make([]patchOp, 0, len(b.annotations)+1)
	if b.schedulerName != "" {
		ops = append(ops, patchOp{Op: "add", Path: "/spec/schedulerName", Value: b.schedulerName})
	}
	if !b.hasAnnotations && len(b.annotations) > 0 {
		// Adding below a missing object fails, so the whole map goes in one operation.
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations", Value: b.annotations})
	} else {
		keys := make([]string, 0, len(b.annotations))
		for k := range b.annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(k), Value: b.annotations[k]})
		}
	}
	return json.Marshal(ops)
}

// pointerEscaper escapes a JSON Pointer reference token (RFC 6901): annotation keys hold "/".
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escapePointer(s string) string { return pointerEscaper.Replace(s) }
