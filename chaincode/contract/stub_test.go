package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeStub is the part of a peer's stub the contract uses. Reads see the committed world;
// writes are buffered and committed only when the transaction succeeds, as on Fabric.
// Methods the contract must not call are left to the embedded nil interface and panic.
type fakeStub struct {
	shim.ChaincodeStubInterface
	world   map[string][]byte
	writes  map[string][]byte // nil value: delete
	args    [][]byte
	txID    string
	ts      time.Time
	creator []byte
	events  []stubEvent
}

type stubEvent struct {
	name    string
	payload []byte
}

func (s *fakeStub) GetArgs() [][]byte { return s.args }
func (s *fakeStub) GetStringArgs() []string {
	out := make([]string, len(s.args))
	for i, a := range s.args {
		out[i] = string(a)
	}
	return out
}
func (s *fakeStub) GetFunctionAndParameters() (string, []string) {
	a := s.GetStringArgs()
	if len(a) == 0 {
		return "", nil
	}
	return a[0], a[1:]
}
func (s *fakeStub) GetTxID() string             { return s.txID }
func (s *fakeStub) GetChannelID() string        { return "test" }
func (s *fakeStub) GetCreator() ([]byte, error) { return s.creator, nil }
func (s *fakeStub) GetTxTimestamp() (*timestamppb.Timestamp, error) {
	return timestamppb.New(s.ts), nil
}
func (s *fakeStub) GetState(key string) ([]byte, error) { return s.world[key], nil }
func (s *fakeStub) PutState(key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	if value == nil {
		value = []byte{}
	}
	s.writes[key] = append([]byte(nil), value...)
	return nil
}
func (s *fakeStub) DelState(key string) error { s.writes[key] = nil; return nil }
func (s *fakeStub) SetEvent(name string, payload []byte) error {
	s.events = append(s.events, stubEvent{name, payload})
	return nil
}
func (s *fakeStub) GetStateByRange(start, end string) (shim.StateQueryIteratorInterface, error) {
	var keys []string
	for k := range s.world {
		if k >= start && (end == "" || k < end) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	it := &fakeIterator{}
	for _, k := range keys {
		it.kvs = append(it.kvs, &queryresult.KV{Key: k, Value: s.world[k]})
	}
	return it, nil
}

type fakeIterator struct{ kvs []*queryresult.KV }

func (it *fakeIterator) HasNext() bool { return len(it.kvs) > 0 }
func (it *fakeIterator) Close() error  { return nil }
func (it *fakeIterator) Next() (*queryresult.KV, error) {
	if len(it.kvs) == 0 {
		return nil, fmt.Errorf("no more results")
	}
	kv := it.kvs[0]
	it.kvs = it.kvs[1:]
	return kv, nil
}

var (
	creatorsMu sync.Mutex
	creators   = map[string][]byte{}
)

// creatorFor returns a serialized identity with a real x509 certificate, so that the
// dispatcher's client identity (cid) parses it and GetMSPID answers as on a peer.
func creatorFor(t testing.TB, mspID string) []byte {
	t.Helper()
	creatorsMu.Lock()
	defer creatorsMu.Unlock()
	if c, ok := creators[mspID]; ok {
		return c
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "admin", Organization: []string{mspID}},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<33, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating certificate: %v", err)
	}
	id := &msp.SerializedIdentity{Mspid: mspID, IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	b, err := proto.Marshal(id)
	if err != nil {
		t.Fatalf("marshalling identity: %v", err)
	}
	creators[mspID] = b
	return b
}

// chain is a one-peer channel: it invokes the real contractapi dispatcher and commits the
// writes of successful transactions.
type chain struct {
	t     testing.TB
	cc    *contractapi.ContractChaincode
	world map[string][]byte
	now   time.Time
	seq   int
	// last is the stub of the last invocation, for checking what it wrote and emitted.
	last *fakeStub
}

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newChain(t testing.TB) *chain {
	t.Helper()
	cc, err := NewChaincode()
	if err != nil {
		t.Fatalf("NewChaincode: %v", err)
	}
	return &chain{t: t, cc: cc, world: map[string][]byte{}, now: epoch}
}

// invoke runs fn as mspID; the clock moves one second per transaction.
func (c *chain) invoke(mspID, fn string, args ...string) ([]byte, error) {
	c.t.Helper()
	c.seq++
	c.now = c.now.Add(time.Second)
	stub := &fakeStub{world: c.world, writes: map[string][]byte{}, txID: fmt.Sprintf("tx%04d", c.seq), ts: c.now, creator: creatorFor(c.t, mspID)}
	stub.args = append(stub.args, []byte(fn))
	for _, a := range args {
		stub.args = append(stub.args, []byte(a))
	}
	c.last = stub
	resp := c.cc.Invoke(stub)
	if resp.Status != shim.OK {
		return nil, fmt.Errorf("%s", resp.Message)
	}
	for k, v := range stub.writes {
		if v == nil {
			delete(c.world, k)
		} else {
			c.world[k] = v
		}
	}
	return resp.Payload, nil
}

func (c *chain) mustInvoke(mspID, fn string, args ...string) []byte {
	c.t.Helper()
	out, err := c.invoke(mspID, fn, args...)
	if err != nil {
		c.t.Fatalf("%s as %s: %v", fn, mspID, err)
	}
	return out
}
