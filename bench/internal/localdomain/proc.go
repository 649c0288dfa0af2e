package localdomain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a process the benchmark started.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Log is the file its output goes to.
	Log string
	// admin: an admin node, stopped after the node managers and their
	// gateways.
	admin bool
	done  chan struct{}
	err   error
}

// start starts cmd with its output appended to Work/name.log: a node
// manager started again after a kill goes on in the same log.
func (d *Domain) start(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, Cmd: cmd, Log: filepath.Join(d.Work, name+".log"), done: make(chan struct{})}
	logFile, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C reaches the benchmark, which stops
	// everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	d.procs = append(d.procs, p)
	return p, nil
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop ends the process with SIGTERM, SIGKILL after 15 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.Kill()
	}
}

// Kill ends the process with SIGKILL and waits for its end.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
}

// WaitUntil calls ok every 50 ms until it says yes, p exits or d passes.
func (p *Proc) WaitUntil(ctx context.Context, d time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while waiting for %s: %v (see %s)", p.Name, what, p.err, p.Log)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ok() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s waiting for %s", d, what)
}
