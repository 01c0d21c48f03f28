package localcluster

import (
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func TestClusterDNSAnswers(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.3.4"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}},
	} {
		if err := indexer.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	d := &clusterDNS{services: corelisters.NewServiceLister(indexer)}
	tests := []struct {
		name  string
		qtype dnsmessage.Type
		rcode dnsmessage.RCode
		want  string // the A record, "" for none
	}{
		{"web.shop.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.96.3.4"},
		{"WEB.Shop.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, "10.96.3.4"},
		{"web.shop.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, ""},
		{"db.shop.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, ""},
		{"web.other.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		{"web.shop.svc.cluster.local.shop.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
		// Not the cluster's: never forwarded.
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeNameError, ""},
	}
	for _, tt := range tests {
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 42, RecursionDesired: true})
		_ = b.StartQuestions()
		_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(tt.name), Type: tt.qtype, Class: dnsmessage.ClassINET})
		query, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		reply, err := d.answer(query)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("%s: reply does not parse: %v", tt.name, err)
		}
		got := ""
		for _, a := range m.Answers {
			if r, ok := a.Body.(*dnsmessage.AResource); ok {
				got = netip.AddrFrom4(r.A).String()
			}
		}
		if m.Header.ID != 42 || !m.Header.Response || m.Header.RCode != tt.rcode || got != tt.want {
			t.Errorf("%s %s: id %d rcode %s answer %q; want rcode %s answer %q", tt.name, tt.qtype, m.Header.ID, m.Header.RCode, got, tt.rcode, tt.want)
		}
	}
	if _, err := d.answer([]byte{1, 2, 3}); err == nil {
		t.Error("a truncated query was answered")
	}
}
