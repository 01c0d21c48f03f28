package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Written by hand (the types are few and small) rather than by deepcopy-gen.

// DeepCopyInto copies m into out.
func (m *Migration) DeepCopyInto(out *Migration) {
	*out = *m
	out.TypeMeta = m.TypeMeta
	m.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if m.Spec.ClientLocation != nil {
		l := *m.Spec.ClientLocation
		out.Spec.ClientLocation = &l
	}
	m.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of m.
func (m *Migration) DeepCopy() *Migration {
	if m == nil {
		return nil
	}
	out := new(Migration)
	m.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (m *Migration) DeepCopyObject() runtime.Object { return m.DeepCopy() }

// DeepCopyInto copies s into out.
func (s *MigrationStatus) DeepCopyInto(out *MigrationStatus) {
	*out = *s
	out.Bids = append([]Bid(nil), s.Bids...)
	out.Excluded = append([]string(nil), s.Excluded...)
	for _, t := range []struct{ in, out **metav1.Time }{
		{&s.StartTime, &out.StartTime}, {&s.ProposedTime, &out.ProposedTime}, {&s.DecidedTime, &out.DecidedTime},
		{&s.ReadyTime, &out.ReadyTime}, {&s.CompletionTime, &out.CompletionTime},
	} {
		*t.out = (*t.in).DeepCopy()
	}
	if s.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(s.Conditions))
		for i := range s.Conditions {
			s.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies l into out.
func (l *MigrationList) DeepCopyInto(out *MigrationList) {
	*out = *l
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]Migration, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a copy of l.
func (l *MigrationList) DeepCopy() *MigrationList {
	if l == nil {
		return nil
	}
	out := new(MigrationList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (l *MigrationList) DeepCopyObject() runtime.Object { return l.DeepCopy() }
