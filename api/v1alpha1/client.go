package v1alpha1

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Client reads and writes Migrations. It is the small typed client client-gen would make
// for one resource.
type Client struct {
	rest  rest.Interface
	codec runtime.ParameterCodec
}

// NewClient returns a Client for the API server of cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &SchemeGroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("creating the Migration client: %w", err)
	}
	return &Client{rest: rc, codec: runtime.NewParameterCodec(s)}, nil
}

// Get reads one Migration.
func (c *Client) Get(ctx context.Context, namespace, name string) (*Migration, error) {
	out := &Migration{}
	err := c.rest.Get().Namespace(namespace).Resource(Resource).Name(name).Do(ctx).Into(out)
	return out, err
}

// List lists Migrations of a namespace ("" for all).
func (c *Client) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*MigrationList, error) {
	out := &MigrationList{}
	err := c.rest.Get().Namespace(namespace).Resource(Resource).VersionedParams(&opts, c.codec).Do(ctx).Into(out)
	return out, err
}

// Watch watches Migrations of a namespace ("" for all).
func (c *Client) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rest.Get().Namespace(namespace).Resource(Resource).VersionedParams(&opts, c.codec).Watch(ctx)
}

// Create creates a Migration.
func (c *Client) Create(ctx context.Context, m *Migration) (*Migration, error) {
	out := &Migration{}
	err := c.rest.Post().Namespace(m.Namespace).Resource(Resource).Body(m).Do(ctx).Into(out)
	return out, err
}

// UpdateStatus writes a Migration's status.
func (c *Client) UpdateStatus(ctx context.Context, m *Migration) (*Migration, error) {
	out := &Migration{}
	err := c.rest.Put().Namespace(m.Namespace).Resource(Resource).Name(m.Name).SubResource("status").Body(m).Do(ctx).Into(out)
	return out, err
}

// Delete deletes a Migration.
func (c *Client) Delete(ctx context.Context, namespace, name string) error {
	return c.rest.Delete().Namespace(namespace).Resource(Resource).Name(name).Do(ctx).Error()
}
