// Package v1alpha1 is the edgemigrate.io/v1alpha1 API: the Migration custom resource that
// the descheduler of each cluster uses to track a migration it takes part in.
//
// The deepcopy functions, the CRD (manifests/crds/) and the typed clientset, listers and
// informers (api/generated/) are generated from the markers here by `make generate`.
//
// +kubebuilder:object:generate=true
// +groupName=edgemigrate.io
// +groupGoName=Edgemigrate
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/edgemigrate/edgemigrate/api"
)

// Version is the API version of this package.
const Version = "v1alpha1"

// SchemeGroupVersion is edgemigrate.io/v1alpha1.
var SchemeGroupVersion = schema.GroupVersion{Group: api.Group, Version: Version}

// Resource qualifies a resource of this group, as the generated listers need.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder registers this package's types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Migration{}, &MigrationList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
