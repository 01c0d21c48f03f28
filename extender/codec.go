package extender

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/edgemigrate/edgemigrate/jetson"
)

// args is extenderv1.ExtenderArgs as the extender reads it: only the parts of the pod its
// demand depends on, and the nodes' names. With full NodeLists each node is kept as the raw
// JSON it came as: only its name is read (and its labels and allocatable only when the
// informer has not seen it yet), and accepted nodes are written back verbatim instead of
// being decoded and encoded again.
type args struct {
	Pod *wirePod
	// byName is true when the scheduler sent node names (nodeCacheCapable).
	byName bool
}

// wirePod is the part of a pod that jetson.PodDemand reads. Its quantities go through
// jetson.ParseQuantity: resource.Quantity's own decoding spends minutes on some inputs.
type wirePod struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		UID         types.UID         `json:"uid"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Containers     []wireContainer   `json:"containers"`
		InitContainers []wireContainer   `json:"initContainers"`
		Overhead       wireResourceList  `json:"overhead"`
		Resources      *wireRequirements `json:"resources"`
	} `json:"spec"`
}

type wireContainer struct {
	Resources     wireRequirements               `json:"resources"`
	RestartPolicy *corev1.ContainerRestartPolicy `json:"restartPolicy"`
}

type wireRequirements struct {
	Requests wireResourceList `json:"requests"`
	Limits   wireResourceList `json:"limits"`
}

type wireResourceList map[corev1.ResourceName]wireQuantity

type wireQuantity struct{ resource.Quantity }

// UnmarshalJSON accepts a quantity as a string or a bare number, as resource.Quantity does.
func (q *wireQuantity) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	parsed, err := jetson.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("quantity %.40q %w", s, err)
	}
	q.Quantity = parsed
	return nil
}

func (l wireResourceList) resourceList() corev1.ResourceList {
	if l == nil {
		return nil
	}
	out := make(corev1.ResourceList, len(l))
	for name, q := range l {
		out[name] = q.Quantity
	}
	return out
}

func (r *wireRequirements) requirements() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: r.Requests.resourceList(), Limits: r.Limits.resourceList()}
}

func containers(wc []wireContainer) []corev1.Container {
	if wc == nil {
		return nil
	}
	out := make([]corev1.Container, len(wc))
	for i := range wc {
		out[i] = corev1.Container{Resources: wc[i].Resources.requirements(), RestartPolicy: wc[i].RestartPolicy}
	}
	return out
}

// pod returns the corev1.Pod that jetson.PodDemand needs.
func (w *wirePod) pod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: w.Metadata.Name, Namespace: w.Metadata.Namespace, UID: w.Metadata.UID, Annotations: w.Metadata.Annotations},
		Spec: corev1.PodSpec{
			Containers:     containers(w.Spec.Containers),
			InitContainers: containers(w.Spec.InitContainers),
			Overhead:       w.Spec.Overhead.resourceList(),
		},
	}
	if w.Spec.Resources != nil {
		r := w.Spec.Resources.requirements()
		p.Spec.Resources = &r
	}
	return p
}

// wireNode is the part of a node that jetson.NodeCapacity reads.
type wireNode struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Status struct {
		Allocatable wireResourceList `json:"allocatable"`
	} `json:"status"`
}

// candidate is one node of a request.
type candidate struct {
	name string
	raw  json.RawMessage // nil with node names
}

// decodeArgs decodes a filter or prioritize request into out and the candidate nodes. It
// fails with a message fit for the caller on malformed JSON and on requests without a pod or
// without nodes. Keys match case-insensitively, as with encoding/json.
func decodeArgs(body []byte, out *args, candidates []candidate) ([]candidate, error) {
	*out = args{}
	var pod, names, nodes []byte
	err := eachMember(body, func(key string, value []byte) error {
		switch {
		case strings.EqualFold(key, "Pod"):
			pod = value
		case strings.EqualFold(key, "NodeNames"):
			names = value
		case strings.EqualFold(key, "Nodes"):
			nodes = value
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decoding extender arguments: %w", err)
	}
	if pod == nil || isNull(pod) {
		return nil, errors.New("extender arguments carry no Pod")
	}
	out.Pod = new(wirePod)
	if err := json.Unmarshal(pod, out.Pod); err != nil {
		return nil, fmt.Errorf("decoding extender arguments: Pod: %w", err)
	}
	switch {
	case names != nil && !isNull(names):
		out.byName = true
		candidates, err = parseNames(names, candidates)
		if err != nil {
			return nil, fmt.Errorf("decoding extender arguments: NodeNames: %w", err)
		}
	case nodes != nil && !isNull(nodes):
		err := eachMember(nodes, func(key string, value []byte) error {
			if !strings.EqualFold(key, "items") {
				return nil
			}
			return eachElement(value, func(item []byte) error {
				name, err := nodeName(item)
				if err != nil {
					return fmt.Errorf("node %d: %w", len(candidates), err)
				}
				candidates = append(candidates, candidate{name: name, raw: item})
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("decoding extender arguments: Nodes: %w", err)
		}
	default:
		return nil, errors.New("extender arguments carry neither NodeNames nor Nodes")
	}
	return candidates, nil
}

// nodeName reads metadata.name of a node.
func nodeName(node []byte) (string, error) {
	var name string
	err := eachMember(node, func(key string, meta []byte) error {
		if !strings.EqualFold(key, "metadata") {
			return nil
		}
		return eachMember(meta, func(key string, value []byte) error {
			if !strings.EqualFold(key, "name") {
				return nil
			}
			if len(value) == 0 || value[0] != '"' {
				return fmt.Errorf("%w: metadata.name is not a string", errSyntax)
			}
			var err error
			name, err = stringValue(value, 0, len(value), bytes.IndexByte(value, '\\') >= 0)
			return err
		})
	})
	return name, err
}

// parseNames reads a JSON array of strings. The names are substrings of one copy of the
// array: thousands of names cost one allocation.
func parseNames(raw []byte, candidates []candidate) ([]candidate, error) {
	all := string(raw)
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, fmt.Errorf("%w: not an array", errSyntax)
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return candidates, trailing(raw, i+1)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return nil, fmt.Errorf("%w: holds something other than strings at offset %d", errSyntax, i)
		}
		end, escaped, err := scanString(raw, i)
		if err != nil {
			return nil, err
		}
		name := all[i+1 : end-1]
		if escaped {
			if name, err = stringValue(raw, i, end, true); err != nil {
				return nil, err
			}
		} else if strings.IndexFunc(name, func(r rune) bool { return r < 0x20 }) >= 0 {
			return nil, fmt.Errorf("%w: control character in node name at offset %d", errSyntax, i)
		}
		candidates = append(candidates, candidate{name: name})
		i = skipWS(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipWS(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == ']' {
			return candidates, trailing(raw, i+1)
		}
		return nil, fmt.Errorf("%w: comma or ] expected at offset %d", errSyntax, i)
	}
}

// decodeNode decodes what the extender needs of a node of a NodeList request.
func decodeNode(raw json.RawMessage) (*corev1.Node, error) {
	var w wireNode
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("decoding node: %w", err)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: w.Metadata.Name, Labels: w.Metadata.Labels},
		Status:     corev1.NodeStatus{Allocatable: w.Status.Allocatable.resourceList()},
	}, nil
}

// decodeBinding decodes a bind request.
func decodeBinding(body []byte) (extenderv1.ExtenderBindingArgs, error) {
	var b extenderv1.ExtenderBindingArgs
	if err := json.Unmarshal(body, &b); err != nil {
		return b, fmt.Errorf("decoding binding arguments: %w", err)
	}
	if b.PodName == "" || b.PodNamespace == "" || b.Node == "" {
		return b, fmt.Errorf("binding arguments need PodName, PodNamespace and Node (got %q, %q, %q)", b.PodName, b.PodNamespace, b.Node)
	}
	return b, nil
}

// appendFilterResult writes extenderv1.ExtenderFilterResult: NodeNames or Nodes (as
// given) for the accepted nodes, and the reasons of the rejected ones.
func appendFilterResult(buf []byte, byName bool, accepted []candidate, failed, unresolvable []rejection, reasons []byte) []byte {
	if byName {
		buf = append(buf, `{"NodeNames":[`...)
		for i, c := range accepted {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, c.name)
		}
		buf = append(buf, `],"Nodes":null`...)
	} else {
		buf = append(buf, `{"NodeNames":null,"Nodes":{"metadata":{},"items":[`...)
		for i, c := range accepted {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, c.raw...)
		}
		buf = append(buf, `]}`...)
	}
	buf = appendFailed(append(buf, `,"FailedNodes":`...), failed, reasons)
	buf = appendFailed(append(buf, `,"FailedAndUnresolvableNodes":`...), unresolvable, reasons)
	return append(buf, `,"Error":""}`...)
}

// rejection is a rejected node and where its reason is in the call's reasons buffer.
type rejection struct {
	node       string
	start, end int
}

func appendFailed(buf []byte, rs []rejection, reasons []byte) []byte {
	buf = append(buf, '{')
	for i, r := range rs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, r.node)
		buf = append(buf, ':')
		buf = appendString(buf, reasons[r.start:r.end])
	}
	return append(buf, '}')
}

// appendPriorities writes extenderv1.HostPriorityList.
func appendPriorities(buf []byte, hosts []candidate, scores []int64) []byte {
	buf = append(buf, '[')
	for i, c := range hosts {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"Host":`...)
		buf = appendString(buf, c.name)
		buf = append(buf, `,"Score":`...)
		buf = strconv.AppendInt(buf, scores[i], 10)
		buf = append(buf, '}')
	}
	return append(buf, ']')
}

func decodeRune[T string | []byte](s T) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 1
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as encoding/json
// does, so that the scheduler can always decode the answer.
func appendString[T string | []byte](buf []byte, s T) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= utf8.RuneSelf {
			r, size := decodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\ufffd`...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		if b >= 0x20 && b != '"' && b != '\\' {
			i++
			continue
		}
		buf = append(buf, s[start:i]...)
		switch b {
		case '"', '\\':
			buf = append(buf, '\\', b)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\r':
			buf = append(buf, '\\', 'r')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
