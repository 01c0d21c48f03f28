package embedded

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgemigrate/edgemigrate/chaincode"
)

// txState is chaincode.State for one transaction. Reads see the state as committed before
// it (including earlier transactions of the same block); writes wait in a write set until
// the transaction succeeds, as on Fabric.
type txState struct {
	bucket   *bolt.Bucket
	msp      string
	txID     string
	ts       time.Time
	readOnly bool
	writes   map[string][]byte // nil value: delete
	event    *chaincode.Event
}

var errReadOnly = errors.New("a query cannot write")

func (s *txState) GetState(key string) ([]byte, error) {
	// bbolt's value is only valid in its transaction; the contract may keep what it reads.
	return bytes.Clone(s.bucket.Get([]byte(key))), nil
}

func (s *txState) PutState(key string, value []byte) error {
	if s.readOnly {
		return errReadOnly
	}
	if key == "" || len(value) == 0 {
		// Fabric refuses empty keys and treats empty values as deletes; refuse both here
		// so that the contract cannot come to rely on either.
		return fmt.Errorf("empty key or value for %q", key)
	}
	s.writes[key] = bytes.Clone(value)
	return nil
}

func (s *txState) DelState(key string) error {
	if s.readOnly {
		return errReadOnly
	}
	s.writes[key] = nil
	return nil
}

func (s *txState) RangeState(startKey, endKey string, fn func(key string, value []byte) error) error {
	c := s.bucket.Cursor()
	end := []byte(endKey)
	for k, v := c.Seek([]byte(startKey)); k != nil && (endKey == "" || bytes.Compare(k, end) < 0); k, v = c.Next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

func (s *txState) TxID() string                    { return s.txID }
func (s *txState) TxTimestamp() (time.Time, error) { return s.ts, nil }
func (s *txState) CallerMSPID() (string, error)    { return s.msp, nil }

func (s *txState) SetEvent(name string, payload []byte) error {
	if s.readOnly {
		return errReadOnly
	}
	if s.event != nil {
		return fmt.Errorf("transaction %s set a second event %s", s.txID, name)
	}
	ev := new(chaincode.Event)
	if err := json.Unmarshal(payload, ev); err != nil {
		return fmt.Errorf("decoding event %s: %w", name, err)
	}
	s.event = ev
	return nil
}

// apply writes the write set in key order.
func (s *txState) apply() error {
	for _, k := range slices.Sorted(maps.Keys(s.writes)) {
		var err error
		if v := s.writes[k]; v == nil {
			err = s.bucket.Delete([]byte(k))
		} else {
			err = s.bucket.Put([]byte(k), v)
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", k, err)
		}
	}
	return nil
}
