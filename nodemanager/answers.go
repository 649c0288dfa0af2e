package nodemanager

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/gatehouse/gatehouse/nodemanager/localapi"
)

// answerIndexes gives each instance's deployment answer an index of its
// own, which moves only when that answer changes. The node manager's local
// index moves for every change it stores (the desired instances, any
// group's deployment), and each move used to answer every gateway's
// blocking query with the deployment it already runs: two answers per
// deployment in a group of ten on one host (the instances change with the
// deployment), each sent, decoded and compared by the gateway for nothing
// (bench/README.md).
//
// The zero value is ready to use.
type answerIndexes struct {
	mu sync.Mutex
	m  map[string]answerIndex
}

type answerIndex struct {
	index uint64
	sum   [sha256.Size]byte
}

// index returns the index of ans, instance's answer read when the local
// index was now: the index of the previous answer if ans says the same,
// else now, or one more than the previous index if now is not above it
// (ans read before a change moved the local index), so that a gateway
// holding the previous index is answered.
func (x *answerIndexes) index(instance string, ans localapi.DeploymentAnswer, now uint64) uint64 {
	sum := answerSum(ans)
	x.mu.Lock()
	defer x.mu.Unlock()
	prev, ok := x.m[instance]
	if ok && prev.sum == sum {
		return prev.index
	}
	if ok && now <= prev.index {
		now = prev.index + 1
	}
	if x.m == nil {
		x.m = map[string]answerIndex{}
	}
	x.m[instance] = answerIndex{index: now, sum: sum}
	return now
}

// forget drops the instances not in keep.
func (x *answerIndexes) forget(keep func(instance string) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name := range x.m {
		if !keep(name) {
			delete(x.m, name)
		}
	}
}

// answerSum identifies what a gateway acts on in an answer: the
// deployment (the node's store replaces one only for another number,
// checksum or signature) and the gossip seeds and keys.
func answerSum(ans localapi.DeploymentAnswer) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	if d := ans.Deployment; d != nil {
		field([]byte{1})
		field(binary.AppendUvarint(nil, d.Number))
		field([]byte(d.Group))
		field([]byte(d.Checksum))
		field(d.Signature)
	} else {
		field([]byte{0})
	}
	if g := ans.Gossip; g != nil {
		field(binary.AppendUvarint(nil, uint64(len(g.Seeds))))
		for _, s := range g.Seeds {
			field([]byte(s))
		}
		field(binary.AppendUvarint(nil, uint64(len(g.Keys))))
		for _, k := range g.Keys {
			field([]byte(k))
		}
	} else {
		field([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
