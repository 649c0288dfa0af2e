package nodemanager

import "sync"

// specNote is what the agent put into a spec that the heartbeats report
// of the process running it.
type specNote struct {
	// release is the gateway release ("" the node manager's own binary).
	release string
	// restartGeneration is the instance's restart generation the spec
	// was made for.
	restartGeneration uint64
}

// specNotes keeps the note of each spec hash the supervisor was given,
// and of the hashes its processes still run: a process keeps its spec
// when its replacement fails, and a heartbeat must say what that process
// runs, not what was asked.
type specNotes struct {
	mu     sync.Mutex
	byHash map[string]specNote
}

func newSpecNotes() *specNotes { return &specNotes{byHash: map[string]specNote{}} }

// set records the notes of the specs just given, keeping those of the
// hashes in running and forgetting the rest.
func (n *specNotes) set(given map[string]specNote, running []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	next := make(map[string]specNote, len(given)+len(running))
	for _, h := range running {
		if note, ok := n.byHash[h]; ok {
			next[h] = note
		}
	}
	for h, note := range given {
		next[h] = note
	}
	n.byHash = next
}

// of returns the note of a spec hash (zero for an unknown one).
func (n *specNotes) of(hash string) specNote {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.byHash[hash]
}
