package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// clusterDomain is the real nodes' DNS domain, Kubernetes' default.
const clusterDomain = "cluster.local"

// clusterDNS answers the real nodes' pods for Services: <service>.<namespace>.svc.cluster.local
// is the Service's ClusterIP, as CoreDNS's kubernetes plugin would say. It is authoritative
// for cluster.local only and forwards nothing: a name it does not know gets NXDOMAIN, so no
// query leaves the machine.
type clusterDNS struct {
	conn     net.PacketConn
	services corelisters.ServiceLister
}

// startClusterDNS serves DNS on addr:53 (UDP), from a Service informer of the cluster.
func (c *Cluster) startClusterDNS(ctx context.Context, addr string) (*clusterDNS, error) {
	factory := informers.NewSharedInformerFactory(c.Client, 10*time.Minute)
	services := factory.Core().V1().Services()
	d := &clusterDNS{services: services.Lister()}
	informer := services.Informer()
	factory.Start(c.dnsStop)
	syncCtx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced) {
		return nil, errors.New("cluster DNS: Service cache not synced")
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(addr, "53"))
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	d.conn = conn
	go d.serve()
	return d, nil
}

func (d *clusterDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply, err := d.answer(buf[:n]); err == nil {
			_, _ = d.conn.WriteTo(reply, from)
		} else {
			klog.V(4).InfoS("Cluster DNS: bad query", "from", from, "err", err)
		}
	}
}

// answer builds the reply to one query.
func (d *clusterDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	reply := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess}
	ip, known := d.lookup(q.Name.String())
	if !known {
		reply.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, reply)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if known && ip.IsValid() && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: ip.As4()})
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// lookup resolves <service>.<namespace>.svc.cluster.local. to the Service's ClusterIP;
// known is false for a name that does not exist (a headless Service exists, without an
// address here).
func (d *clusterDNS) lookup(name string) (ip netip.Addr, known bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(name), ".svc."+clusterDomain+".")
	if !ok {
		return netip.Addr{}, false
	}
	svcName, ns, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(ns, ".") {
		return netip.Addr{}, false
	}
	svc, err := d.services.Services(ns).Get(svcName)
	if err != nil {
		return netip.Addr{}, false
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		return netip.Addr{}, true
	}
	addr, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, true
	}
	return addr, true
}

func (d *clusterDNS) stop() {
	if d != nil && d.conn != nil {
		d.conn.Close()
	}
}
