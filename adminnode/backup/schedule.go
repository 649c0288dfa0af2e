package backup

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/store"
	"github.com/gatehouse/gatehouse/backupfile"
	"github.com/gatehouse/gatehouse/objstore"
)

// Schedule configures the backups an admin node takes by itself.
type Schedule struct {
	Bucket objstore.Bucket
	// Interval is the time between two backups; the first is taken as
	// soon as the lease is held.
	Interval time.Duration
	// Keep is how many of the domain's backups the bucket keeps: older
	// ones are deleted after each backup.
	Keep int
}

// Check refuses a schedule that cannot work, naming the flag.
func (s Schedule) Check() error {
	switch {
	case s.Interval < time.Second:
		return fmt.Errorf("--backup-interval %s: at least 1s", s.Interval)
	case s.Keep < 1:
		return fmt.Errorf("--backup-keep %d: keep at least 1 backup", s.Keep)
	}
	return nil
}

// Status is how the scheduled backups of one admin node went.
type Status struct {
	// Running is true while this admin node holds the lease and so takes
	// the backups.
	Running     bool
	Location    string
	Interval    time.Duration
	Keep        int
	LastSuccess time.Time
	LastName    string
	LastSize    int64
	LastFailure time.Time
	// LastError is the error of the last backup, "" when it succeeded.
	LastError string
	Successes uint64
	Failures  uint64
	// Kept is how many backups the bucket held after the last pruning.
	Kept int
}

// Lease is what the scheduler needs of the background lease.
type Lease interface{ Held() bool }

// Scheduler takes the scheduled backups of a domain.
type Scheduler struct {
	sched  Schedule
	store  store.Store
	domain string
	key    ed25519.PrivateKey
	log    hclog.Logger
	now    func() time.Time

	mu     sync.Mutex
	status Status
}

// NewScheduler returns the scheduler of sched for the domain of s, whose
// backups key signs.
func NewScheduler(sched Schedule, s store.Store, domain string, key ed25519.PrivateKey, log hclog.Logger, now func() time.Time) *Scheduler {
	return &Scheduler{sched: sched, store: s, domain: domain, key: key, log: log, now: now,
		status: Status{Location: sched.Bucket.String(), Interval: sched.Interval, Keep: sched.Keep}}
}

// Status returns how the backups went so far.
func (sc *Scheduler) Status() Status {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.status
}

// Run takes a backup whenever one is due and lease is held, until ctx
// ends. A failed backup is logged and counted, and tried again one
// interval later.
func (sc *Scheduler) Run(ctx context.Context, lease Lease) {
	poll := min(sc.sched.Interval, 5*time.Second)
	var last time.Time
	for {
		held := lease.Held()
		sc.mu.Lock()
		sc.status.Running = held
		sc.mu.Unlock()
		if now := sc.now(); held && (last.IsZero() || now.Sub(last) >= sc.sched.Interval) {
			last = now
			sc.once(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

// once takes one backup and prunes the older ones.
func (sc *Scheduler) once(ctx context.Context) {
	st, err := sc.take(ctx)
	var kept int
	if err == nil {
		kept, err = sc.prune(ctx)
		if err != nil {
			err = fmt.Errorf("backup %s stored, but deleting older backups failed: %w", st.Name, err)
		}
	}
	if ctx.Err() != nil {
		return
	}
	now := sc.now()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if st.Name != "" {
		sc.status.LastSuccess, sc.status.LastName, sc.status.LastSize = now, st.Name, st.Size
		sc.status.Successes++
	}
	if err != nil {
		sc.status.LastFailure, sc.status.LastError = now, err.Error()
		sc.status.Failures++
		sc.log.Error("scheduled backup failed", "location", sc.sched.Bucket.String(), "error", err)
		return
	}
	sc.status.LastError, sc.status.Kept = "", kept
	sc.log.Info("scheduled backup stored", "name", st.Name, "size", st.Size, "records", st.Items, "checksum", st.Checksum, "kept", kept)
}

// take writes a backup of the store into the bucket, checked as it goes.
func (sc *Scheduler) take(ctx context.Context) (backupfile.Stored, error) {
	at := sc.now()
	name := backupfile.ObjectName(sc.domain, at)
	pr, pw := io.Pipe()
	go func() {
		_, err := Write(ctx, pw, sc.store, sc.domain, sc.key, at)
		pw.CloseWithError(err)
	}()
	st, err := backupfile.Upload(ctx, sc.sched.Bucket, name, pr, backupfile.Expect{Domain: sc.domain, Key: sc.key.Public().(ed25519.PublicKey)})
	// The writer stops at its next write once the reader is gone.
	pr.CloseWithError(errors.New("backup abandoned"))
	return st, err
}

// prune deletes the domain's backups beyond the Keep newest, and returns
// how many are left.
func (sc *Scheduler) prune(ctx context.Context) (int, error) {
	objs, err := sc.sched.Bucket.List(ctx, sc.domain+"-")
	if err != nil {
		return 0, err
	}
	var ours []string
	for _, o := range objs {
		// Another domain's name may begin with this one's and a dash:
		// only names of this domain's form are its backups.
		if strings.HasSuffix(o.Key, backupfile.Suffix) && !strings.Contains(o.Key, "/") && isBackupName(sc.domain, o.Key) {
			ours = append(ours, o.Key)
		}
	}
	// List sorts by key, and the names sort by time.
	for len(ours) > sc.sched.Keep {
		if err := sc.sched.Bucket.Delete(ctx, ours[0]); err != nil && !errors.Is(err, objstore.ErrNotExist) {
			return len(ours), fmt.Errorf("delete %s: %w", ours[0], err)
		}
		ours = ours[1:]
	}
	return len(ours), nil
}

// isBackupName reports whether key is an backupfile.ObjectName of domain.
func isBackupName(domain, key string) bool {
	stamp := strings.TrimSuffix(strings.TrimPrefix(key, domain+"-"), backupfile.Suffix)
	_, err := time.Parse("20060102T150405.000Z", stamp)
	return err == nil
}
