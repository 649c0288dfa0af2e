package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/hashicorp/go-hclog"
)

// UnitName is the systemd template unit of gateways; instance <name> is
// gatehouse-gateway@<name>.service.
const UnitName = "gatehouse-gateway@.service"

// UnitNameB is the template of each instance's second slot: a gateway is
// replaced without downtime by starting the new process in the slot that
// is not the instance's (gatehouse-gateway-b@<name>.service when it runs
// in gatehouse-gateway@<name>.service, and back), which takes over the
// running one's sockets.
const UnitNameB = "gatehouse-gateway-b@.service"

// Slots of an instance: SlotA is gatehouse-gateway@NAME, the instance's
// unit until a replacement moves it to SlotB.
const (
	SlotA = "a"
	SlotB = "b"
)

func otherSlot(slot string) string {
	if slot == SlotB {
		return SlotA
	}
	return SlotB
}

// SlotUnit returns the name of instance name's unit in slot.
func SlotUnit(slot, name string) string {
	if slot == SlotB {
		return "gatehouse-gateway-b@" + name + ".service"
	}
	return Unit(name)
}

// ArgsVar is the variable of the environment file that carries the
// gateway's arguments; the unit's ExecStart expands it.
const ArgsVar = "GATEHOUSE_GATEWAY_ARGS"

// Runner runs a command and returns its standard output (the systemd
// driver runs systemctl through it, so that tests can check the commands).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec; an error carries the command's
// standard error.
type ExecRunner struct{}

// Run runs name with args.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// SystemdOptions configure the systemd driver. Zero values take the
// defaults.
type SystemdOptions struct {
	// Binary is the absolute path the templates' ExecStart runs (default:
	// this executable). A Spec with another binary (a release) runs a copy
	// of it in ReleaseDir, named in a drop-in of its unit.
	Binary string
	// ReleaseDir holds the copies of the other binaries the gateways run,
	// one directory per content (default
	// /var/lib/gatehouse-gateway-releases): the node manager's own copies
	// are in its data dir, which a gateway's user cannot enter.
	ReleaseDir string
	// User runs the gateways (default "gatehouse-gateway"). The unit has
	// DynamicUser=yes: systemd makes the user (and its group) while a
	// gateway runs, unless a user of that name exists, which it then uses;
	// nobody has to create one. Not "gatehouse", the admin node's user
	// (docs/admin-node.md), whose files (the domain CA's key) a gateway
	// must not read.
	User string
	// UnitDir is where the unit is installed (default /etc/systemd/system).
	UnitDir string
	// EnvDir holds one environment file per instance, <name>.env, for its
	// unit in slot a, b/<name>.env for slot b, and <name>.slot, the slot
	// that is the instance's (default /etc/gatehouse/gateway).
	EnvDir string
	// StateDir holds the units' state directories, as the node manager
	// sees them (default /var/lib/gatehouse-gateway): a replacement writes
	// its takeover ready file in its instance's directory there.
	StateDir string
	// DrainTimeout is the gateway's drain timeout; TimeoutStopSec= is that
	// plus 5 s, after which systemd sends SIGKILL (default 30 s).
	DrainTimeout time.Duration
	// SystemdVersion decides which directives the unit may use
	// (RestartSteps= needs 254); 0 asks `systemctl --version`.
	SystemdVersion int
	// Runner runs systemctl (default ExecRunner).
	Runner Runner
	// PollInterval is how often a unit's state is read (default 1 s).
	PollInterval time.Duration
	Logger       hclog.Logger
}

// Systemd is the driver that runs each gateway as an instance of the
// template unit gatehouse-gateway@.service, with systemctl.
type Systemd struct {
	opts SystemdOptions
	log  hclog.Logger

	mu        sync.Mutex
	installed bool
}

var _ Driver = (*Systemd)(nil)

// NewSystemd makes a systemd driver. Nothing is written before the first
// Start (or Install).
func NewSystemd(opts SystemdOptions) (*Systemd, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Systemd{opts: opts, log: opts.Logger}, nil
}

func (opts SystemdOptions) withDefaults() (SystemdOptions, error) {
	var err error
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return opts, fmt.Errorf("systemd driver: %w", err)
		}
	}
	if opts.User == "" {
		opts.User = "gatehouse-gateway"
	}
	if opts.UnitDir == "" {
		opts.UnitDir = "/etc/systemd/system"
	}
	if opts.EnvDir == "" {
		opts.EnvDir = "/etc/gatehouse/gateway"
	}
	if opts.StateDir == "" {
		opts.StateDir = "/var/lib/" + StateDirectory
	}
	if opts.ReleaseDir == "" {
		opts.ReleaseDir = "/var/lib/gatehouse-gateway-releases"
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 30 * time.Second
	}
	if opts.Runner == nil {
		opts.Runner = ExecRunner{}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return opts, nil
}

// Unit returns the name of instance name's unit.
func Unit(name string) string { return "gatehouse-gateway@" + name + ".service" }

// StateDirectory is the units' StateDirectory= without the instance:
// systemd makes /var/lib/<StateDirectory>/<instance> before the gateway
// starts, owned by the unit's user (mode 0700), and keeps it across
// restarts and removals. It is not under /var/lib/gatehouse, which
// `node join` may have made 0700 on its way to the data dir, and which the
// gateways' user could then not enter.
const StateDirectory = "gatehouse-gateway"

// SystemdDataDir is the data dir (--data-dir) of instance name's gateway
// under the systemd driver: its unit's state directory, the only path it
// may write. (With DynamicUser= systemd keeps it in
// /var/lib/private/gatehouse-gateway/<instance>, which this path links to.)
func SystemdDataDir(name string) string { return "/var/lib/" + StateDirectory + "/" + name }

var unitTemplate = template.Must(template.New("unit").Parse(`# Generated by gatehouse node (systemd driver of the supervisor): rewritten
# when the node manager starts; do not edit. One instance per gateway:
# {{.Unit}}, its arguments and secret in
# {{.EnvDir}}/{{.EnvSub}}<instance>.env. Each gateway has two units, ` + UnitName + `
# and ` + UnitNameB + `: a replacement starts in the one that does not run,
# takes over the running one's sockets, and the other drains and stops.
[Unit]
Description=Gatehouse gateway %i{{if .EnvSub}} (slot b){{end}}
After=network-online.target
Wants=network-online.target
# At most {{.StartLimitBurst}} starts in {{.StartLimitInterval}}: then the unit fails (start-limit-hit)
# and the node manager shows a crash loop and retries with its own backoff.
StartLimitIntervalSec={{.StartLimitInterval}}
StartLimitBurst={{.StartLimitBurst}}

[Service]
Type=exec
# A user of systemd's making, unless one of this name exists: nobody has to
# create it, and it owns nothing but the state directory.
DynamicUser=yes
User={{.User}}
EnvironmentFile={{.EnvDir}}/{{.EnvSub}}%i.env
# /var/lib/` + StateDirectory + `/%i, made by systemd owned by the user: the
# gateway's data dir (--data-dir) and the one path it writes.
StateDirectory=` + StateDirectory + `/%i
StateDirectoryMode=0700
WorkingDirectory=%S/` + StateDirectory + `/%i
# $` + ArgsVar + ` (unbraced) is split at whitespace into arguments.
ExecStart={{.Binary}} $` + ArgsVar + `
Restart=on-failure
RestartSec={{.RestartSec}}
{{- if .RestartSteps}}
RestartSteps={{.RestartSteps}}
RestartMaxDelaySec={{.RestartMaxDelay}}
{{- end}}
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={{.TimeoutStop}}
SyslogIdentifier=gatehouse-gateway-%i
LimitNOFILE=1048576
UMask=0077

# Hardening: the gateway writes only its state directory.
NoNewPrivileges=yes
ProtectSystem=strict
PrivateTmp=yes
ProtectHome=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
# Listening on ports below 1024 (:80, :443) is the one privilege kept.
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE

# Enabled per instance by the node manager: the host's gateways start at
# boot without waiting for it (it adopts them when it starts).
[Install]
WantedBy=multi-user.target
`))

// UnitFile renders the template unit of slot (SlotA or SlotB) for opts,
// with the defaults of NewSystemd; SystemdVersion 0 renders for any
// systemd from 240 on (Type=exec), a version from 254 on adds systemd's
// own exponential restart delay. The two slots differ only in their
// environment file.
func UnitFile(opts SystemdOptions, slot string) ([]byte, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	unit, envSub := UnitName, ""
	switch slot {
	case SlotA:
	case SlotB:
		unit, envSub = UnitNameB, SlotB+"/"
	default:
		return nil, fmt.Errorf("unit: slot %q: want %s or %s", slot, SlotA, SlotB)
	}
	for what, v := range map[string]string{"binary": opts.Binary, "environment dir": opts.EnvDir} {
		if err := unitPath(what, v); err != nil {
			return nil, fmt.Errorf("unit: %w", err)
		}
	}
	if !unitWordRE.MatchString(opts.User) {
		return nil, fmt.Errorf("unit: bad user %q", opts.User)
	}
	data := map[string]any{
		"Unit":               unit,
		"EnvSub":             envSub,
		"Binary":             opts.Binary,
		"EnvDir":             opts.EnvDir,
		"User":               opts.User,
		"RestartSec":         "100ms",
		"StartLimitInterval": "60s",
		"StartLimitBurst":    5,
		"TimeoutStop":        seconds(opts.DrainTimeout + 5*time.Second),
	}
	if opts.SystemdVersion >= 254 {
		// 100 ms doubling to 30 s, like the exec driver's backoff.
		data["RestartSteps"] = 9
		data["RestartMaxDelay"] = "30s"
	}
	var b bytes.Buffer
	if err := unitTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var unitWordRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// unitPath checks that v can be written in a unit file as it is.
func unitPath(what, v string) error {
	if !filepath.IsAbs(v) {
		return fmt.Errorf("%s %q is not an absolute path", what, v)
	}
	if strings.ContainsAny(v, " \t\n\"'\\%$;") {
		return fmt.Errorf("%s %q holds a character systemd would interpret", what, v)
	}
	return nil
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + "s"
}

// EnvFile renders instance spec's environment file: its arguments in
// GATEHOUSE_GATEWAY_ARGS, its Env, and its hash in a comment (read back
// when the instance is adopted). An argument may not hold whitespace (the
// unit splits the variable at whitespace) nor control characters.
func EnvFile(spec Spec) ([]byte, error) {
	return envFile(spec, spec.Args)
}

// envFile is EnvFile with args in place of spec.Args (a replacement adds
// its takeover flags); the hash stays spec's.
func envFile(spec Spec, args []string) ([]byte, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	for _, a := range args {
		if a == "" || strings.IndexFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return nil, fmt.Errorf("%w: instance %s: argument %q is empty or holds whitespace or a control character (systemd splits arguments at whitespace)", ErrInvalid, spec.Name, a)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# gatehouse gateway %s: written by the node manager; do not edit.\n", spec.Name)
	fmt.Fprintf(&b, "# spec-hash: %s\n", spec.Hash())
	fmt.Fprintf(&b, "%s=%s\n", ArgsVar, envQuote(strings.Join(args, " ")))
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		if !envNameRE.MatchString(k) || k == ArgsVar {
			return nil, fmt.Errorf("%w: instance %s: environment variable name %q", ErrInvalid, spec.Name, k)
		}
		if strings.ContainsAny(v, "\x00\n\r") {
			return nil, fmt.Errorf("%w: instance %s: environment variable %s holds a line break", ErrInvalid, spec.Name, k)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, envQuote(v))
	}
	return b.Bytes(), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// envQuote double-quotes v for an EnvironmentFile: inside double quotes
// systemd takes \", \\, \` and \$ as escapes.
func envQuote(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		if r == '"' || r == '\\' || r == '`' || r == '$' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// envPath is the environment file of instance name's unit in slot.
func (d *Systemd) envPath(slot, name string) string {
	if slot == SlotB {
		return filepath.Join(d.opts.EnvDir, SlotB, name+".env")
	}
	return filepath.Join(d.opts.EnvDir, name+".env")
}

func (d *Systemd) slotPath(name string) string {
	return filepath.Join(d.opts.EnvDir, name+".slot")
}

// slotRecord is the content of EnvDir/<name>.slot: which of the two units
// is the instance's. No file is slot a, the one unit of the layout before
// there were two.
type slotRecord struct {
	Schema int    `json:"schema"`
	Slot   string `json:"slot"`
}

const slotSchema = 1

// activeSlot reads which slot is instance name's.
func (d *Systemd) activeSlot(name string) (string, error) {
	b, err := os.ReadFile(d.slotPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return SlotA, nil
	}
	if err != nil {
		return "", fmt.Errorf("slot of %s: %w", name, err)
	}
	var rec slotRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", fmt.Errorf("slot of %s: %s: %w", name, d.slotPath(name), err)
	}
	if rec.Schema != slotSchema {
		return "", fmt.Errorf("slot of %s: %s: schema %d, this version reads %d", name, d.slotPath(name), rec.Schema, slotSchema)
	}
	if rec.Slot != SlotA && rec.Slot != SlotB {
		return "", fmt.Errorf("slot of %s: %s: slot %q", name, d.slotPath(name), rec.Slot)
	}
	return rec.Slot, nil
}

// setSlot records slot as instance name's, enables its unit (it starts at
// boot) and disables the other's.
func (d *Systemd) setSlot(ctx context.Context, name, slot string) error {
	if err := writeFileAtomic(d.slotPath(name), mustJSON(slotRecord{Schema: slotSchema, Slot: slot}), 0o644); err != nil {
		return fmt.Errorf("record slot of %s: %w", name, err)
	}
	if _, err := d.systemctl(ctx, "enable", "--no-reload", SlotUnit(slot, name)); err != nil {
		return fmt.Errorf("record slot of %s: %w", name, err)
	}
	if _, err := d.systemctl(ctx, "disable", "--no-reload", SlotUnit(otherSlot(slot), name)); err != nil {
		return fmt.Errorf("record slot of %s: %w", name, err)
	}
	return nil
}

// readyPath is the takeover ready file of instance name's replacement
// (gateway --takeover-ready-file), in its state directory: the one path
// the gateway may write.
func (d *Systemd) readyPath(name string) string {
	return filepath.Join(d.opts.StateDir, name, TakeoverReadyFileName)
}

// takeoverArgs are spec's arguments with --takeover and its ready file
// (readyPath, as the gateway sees it).
func takeoverArgs(spec Spec) []string {
	return append(slices.Clone(spec.Args), "--takeover", "--takeover-ready-file", SystemdDataDir(spec.Name)+"/"+TakeoverReadyFileName)
}

func (d *Systemd) systemctl(ctx context.Context, args ...string) ([]byte, error) {
	return d.opts.Runner.Run(ctx, "systemctl", args...)
}

// Install writes the template units of both slots where they differ from
// the installed ones and reloads systemd. Start calls it once.
func (d *Systemd) Install(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.installLocked(ctx)
}

func (d *Systemd) installLocked(ctx context.Context) error {
	if d.opts.SystemdVersion == 0 {
		d.opts.SystemdVersion = -1 // asked once; unknown stays old
		if out, err := d.systemctl(ctx, "--version"); err == nil {
			if v := parseSystemdVersion(out); v > 0 {
				d.opts.SystemdVersion = v
			}
		}
	}
	changed := false
	for slot, name := range map[string]string{SlotA: UnitName, SlotB: UnitNameB} {
		unit, err := UnitFile(d.opts, slot)
		if err != nil {
			return err
		}
		path := filepath.Join(d.opts.UnitDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, unit) {
			continue
		}
		if err := os.MkdirAll(d.opts.UnitDir, 0o755); err != nil {
			return fmt.Errorf("install unit: %w", err)
		}
		if err := writeFileAtomic(path, unit, 0o644); err != nil {
			return fmt.Errorf("install unit: %w", err)
		}
		d.log.Info("installed unit", "path", path)
		changed = true
	}
	if changed {
		if _, err := d.systemctl(ctx, "daemon-reload"); err != nil {
			return fmt.Errorf("install unit: %w", err)
		}
	}
	d.installed = true
	return nil
}

// parseSystemdVersion reads "systemd 252 (252.38-1~deb12u1)".
func parseSystemdVersion(out []byte) int {
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "systemd" {
		return 0
	}
	v, _ := strconv.Atoi(f[1])
	return v
}

// Start installs the units if needed, writes the environment file of the
// instance's slot, enables its unit (so that it starts at boot) and runs
// `systemctl restart` (which starts a stopped unit, and makes a running
// one pick up the new file). systemd makes the state directory.
//
// The gateway gets --takeover here too, which finds nothing to take when
// no gateway of the instance runs: when one does, in the other slot (a
// replacement that finished after the node manager that started it went
// away, its recorded unit since stopped), the new process takes its
// sockets instead of failing to bind them.
func (d *Systemd) Start(ctx context.Context, spec Spec) (Proc, error) {
	slot, err := d.activeSlot(spec.Name)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	if err := d.prepare(ctx, slot, spec, takeoverArgs(spec)); err != nil {
		return nil, err
	}
	unit := SlotUnit(slot, spec.Name)
	// --no-reload: enabling adds only the boot-time link, which the
	// running systemd does not need to know.
	if _, err := d.systemctl(ctx, "enable", "--no-reload", unit); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	return d.startUnit(ctx, slot, spec)
}

// prepare checks spec, installs the units if needed, writes the
// environment file of spec's unit in slot with args and clears a failed
// state of that unit.
func (d *Systemd) prepare(ctx context.Context, slot string, spec Spec, args []string) error {
	env, err := envFile(spec, args)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if !d.installed {
		if err := d.installLocked(ctx); err != nil {
			d.mu.Unlock()
			return err
		}
	}
	err = d.useBinaryLocked(ctx, slot, spec)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	path := d.envPath(slot, spec.Name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	if err := writeFileAtomic(path, env, 0o600); err != nil {
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	d.systemctl(ctx, "reset-failed", SlotUnit(slot, spec.Name)) // forget an earlier start-limit-hit; fails harmlessly when not failed
	return nil
}

// startUnit (re)starts the unit of spec in slot and returns its process.
// A process that exits before systemd has seen it start fails the start
// job (`systemctl restart` then says "the control process exited with
// error code"), yet it ran, and systemd may be restarting it
// (Restart=on-failure): that is a process which exited, returned as
// such, not an error of starting, so that the caller treats it as it
// treats one that exits a moment later.
func (d *Systemd) startUnit(ctx context.Context, slot string, spec Spec) (Proc, error) {
	asked := time.Now()
	_, startErr := d.systemctl(ctx, "restart", SlotUnit(slot, spec.Name))
	st, err := d.show(ctx, slot, spec.Name)
	switch {
	case startErr != nil && (err != nil || st.StartedAt.IsZero() || st.StartedAt.Before(asked)):
		return nil, fmt.Errorf("start %s: %w", spec.Name, startErr)
	case err != nil:
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	case startErr != nil:
		d.log.Debug("the unit's process exited as it started", "unit", SlotUnit(slot, spec.Name), "error", startErr)
	}
	return d.newProc(slot, spec.Name, spec.Hash(), st), nil
}

// ReleaseDropIn is the drop-in, in the directory <unit>.d beside the
// templates, that makes an instance's unit run another binary than the
// template's.
const ReleaseDropIn = "release.conf"

func (d *Systemd) dropInPath(slot, name string) string {
	return filepath.Join(d.opts.UnitDir, SlotUnit(slot, name)+".d", ReleaseDropIn)
}

// useBinaryLocked makes spec's unit in slot run spec.Binary: the
// template's binary needs no drop-in (one left from a release is
// removed); another is copied into ReleaseDir (the gateway's user could
// not read it where it is) and named in the unit's drop-in. systemd is
// reloaded when a drop-in changed.
func (d *Systemd) useBinaryLocked(ctx context.Context, slot string, spec Spec) error {
	path := d.dropInPath(slot, spec.Name)
	var want []byte
	if spec.Binary != d.opts.Binary {
		if err := unitPath("binary", spec.Binary); err != nil {
			return fmt.Errorf("%w: instance %s: %w", ErrInvalid, spec.Name, err)
		}
		bin, err := d.copyRelease(spec.Binary)
		if err != nil {
			return fmt.Errorf("start %s: %w", spec.Name, err)
		}
		want = fmt.Appendf(nil, "# Written by gatehouse node: instance %s runs %s\n# (copied to %s); removed when it runs %s again.\n[Service]\nExecStart=\nExecStart=%s $%s\n",
			spec.Name, spec.Binary, bin, d.opts.Binary, bin, ArgsVar)
	}
	old, err := os.ReadFile(path)
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("start %s: %w", spec.Name, err)
	case err != nil && want == nil, err == nil && bytes.Equal(old, want):
		return nil
	case want == nil:
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("start %s: %w", spec.Name, err)
		}
		os.Remove(filepath.Dir(path)) // only when empty
	default:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("start %s: %w", spec.Name, err)
		}
		if err := writeFileAtomic(path, want, 0o644); err != nil {
			return fmt.Errorf("start %s: %w", spec.Name, err)
		}
	}
	if _, err := d.systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("start %s: %w", spec.Name, err)
	}
	d.pruneReleasesLocked()
	return nil
}

// copyRelease copies binary into ReleaseDir/<sha256 prefix>/, readable
// and executable by all (it holds no secret), unless that copy exists,
// and returns the copy's path.
func (d *Systemd) copyRelease(binary string) (string, error) {
	f, err := os.Open(binary)
	if err != nil {
		return "", fmt.Errorf("binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("binary %s: %w", binary, err)
	}
	dir := filepath.Join(d.opts.ReleaseDir, hex.EncodeToString(h.Sum(nil))[:16])
	dst := filepath.Join(dir, filepath.Base(binary))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("copy binary: %w", err)
	}
	// Whatever the node manager's umask: the gateway's user must enter.
	for _, p := range []string{d.opts.ReleaseDir, dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			return "", fmt.Errorf("copy binary: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("copy binary: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".copy*")
	if err != nil {
		return "", fmt.Errorf("copy binary: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := io.Copy(tmp, f); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy binary %s: %w", binary, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy binary: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("copy binary: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("copy binary: %w", err)
	}
	return dst, nil
}

// pruneReleasesLocked removes the copies in ReleaseDir that no drop-in
// names any more (a unit that runs one has its drop-in until it is
// started on another binary).
func (d *Systemd) pruneReleasesLocked() {
	entries, err := os.ReadDir(d.opts.ReleaseDir)
	if err != nil {
		return
	}
	dropIns, _ := filepath.Glob(filepath.Join(d.opts.UnitDir, "gatehouse-gateway*@*.service.d", ReleaseDropIn))
	var named []byte
	for _, p := range dropIns {
		b, _ := os.ReadFile(p)
		named = append(named, b...)
	}
	for _, ent := range entries {
		dir := filepath.Join(d.opts.ReleaseDir, ent.Name())
		if ent.IsDir() && !bytes.Contains(named, []byte(dir+"/")) {
			if err := os.RemoveAll(dir); err != nil {
				d.log.Warn("cannot remove an unused copy of a binary", "dir", dir, "error", err)
			}
		}
	}
}

var _ Replacer = (*Systemd)(nil)

// StartReplacement starts spec in the instance's other slot, with
// --takeover (the gateway takes the running one's sockets) and its ready
// file in the state directory both slots share. The other slot's unit is
// not enabled, nor recorded as the instance's, before Promote: a node
// manager restarting meanwhile adopts the unit that serves.
func (d *Systemd) StartReplacement(ctx context.Context, spec Spec) (Proc, error) {
	slot, err := d.activeSlot(spec.Name)
	if err != nil {
		return nil, fmt.Errorf("replace %s: %w", spec.Name, err)
	}
	slot = otherSlot(slot)
	// An earlier replacement's ready file names an earlier process, so
	// Serving is not misled by it; removing it is tidiness the node
	// manager's sandbox may refuse (the directory is the gateway user's,
	// and the sandboxed root has no capability to override that).
	_ = os.Remove(d.readyPath(spec.Name))
	if err := d.prepare(ctx, slot, spec, takeoverArgs(spec)); err != nil {
		return nil, err
	}
	return d.startUnit(ctx, slot, spec)
}

// Serving reports whether replacement p wrote, in its ready file, that it
// serves: the file names p's main pid.
func (d *Systemd) Serving(p Proc) bool {
	up, ok := p.(*unitProc)
	if !ok {
		return false
	}
	return d.readyNames(up.name, up.Info().PID)
}

// readyNames reports whether instance name's ready file names pid.
func (d *Systemd) readyNames(name string, pid int) bool {
	b, err := os.ReadFile(d.readyPath(name))
	if err != nil {
		return false
	}
	var rec struct {
		PID string `json:"pid"`
	}
	return json.Unmarshal(b, &rec) == nil && pid != 0 && rec.PID == strconv.Itoa(pid)
}

// Promote records p's slot as the instance's, enables its unit and
// disables the other's (which has stopped).
func (d *Systemd) Promote(p Proc) error {
	up, ok := p.(*unitProc)
	if !ok {
		return fmt.Errorf("promote: not a unit of the systemd driver: %T", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.setSlot(ctx, up.name, up.slot)
}

// Adopt returns the instances that have an environment file and whose unit
// in the recorded slot is active (or being restarted by systemd). When
// the other slot's unit is active and that unit has ended, or has been
// told to drain (the ready file names the other's main process), a
// replacement finished, or is finishing, while no node manager watched
// it: the other slot is recorded as the instance's and adopted. When
// both are active and the ready file does not name the other, the
// recorded one is adopted (the other is a replacement that may yet fail;
// if it takes over, the adopted unit's end is a gateway exit like any
// other, and the next start takes the sockets back).
func (d *Systemd) Adopt(ctx context.Context) ([]Proc, error) {
	names, err := d.instanceNames()
	if err != nil {
		return nil, fmt.Errorf("systemd driver: %w", err)
	}
	var out []Proc
	for _, name := range names {
		slot, err := d.activeSlot(name)
		if err != nil {
			return nil, fmt.Errorf("systemd driver: %w", err)
		}
		st, err := d.show(ctx, slot, name)
		if err != nil {
			return nil, fmt.Errorf("systemd driver: %w", err)
		}
		other := otherSlot(slot)
		ost, err := d.show(ctx, other, name)
		if err != nil {
			return nil, fmt.Errorf("systemd driver: %w", err)
		}
		if st.ended() && ost.ended() {
			continue
		}
		if !ost.ended() && (st.ended() || d.readyNames(name, ost.MainPID)) {
			d.log.Info("adopting the unit of the other slot: its replacement finished while no node manager watched", "instance", name, "unit", SlotUnit(other, name))
			if err := d.setSlot(ctx, name, other); err != nil {
				return nil, fmt.Errorf("systemd driver: %w", err)
			}
			slot, st = other, ost
		}
		hash := ""
		if b, err := os.ReadFile(d.envPath(slot, name)); err == nil {
			hash = envFileHash(b)
		}
		out = append(out, d.newProc(slot, name, hash, st))
	}
	return out, nil
}

// instanceNames are the instances with an environment file, of either
// slot.
func (d *Systemd) instanceNames() ([]string, error) {
	var names []string
	for _, dir := range []string{d.opts.EnvDir, filepath.Join(d.opts.EnvDir, SlotB)} {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, ent := range entries {
			name, ok := strings.CutSuffix(ent.Name(), ".env")
			if ok && !ent.IsDir() && nameRE.MatchString(name) && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

func envFileHash(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "# spec-hash: "); ok {
			return strings.TrimSpace(h)
		}
	}
	return ""
}

// Remove disables the instance's (stopped) units of both slots, clears a
// failed state of them and deletes their environment files, drop-ins
// (systemd reloaded then, so that an instance made again under the name
// runs the template's binary) and the slot record. The state directory
// stays.
func (d *Systemd) Remove(ctx context.Context, name string) error {
	var errs []error
	a, b := SlotUnit(SlotA, name), SlotUnit(SlotB, name)
	if _, err := d.systemctl(ctx, "disable", "--no-reload", a, b); err != nil {
		errs = append(errs, err)
	}
	d.systemctl(ctx, "reset-failed", a, b)
	for _, path := range []string{d.envPath(SlotA, name), d.envPath(SlotB, name), d.slotPath(name)} {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	reload := false
	for _, slot := range []string{SlotA, SlotB} {
		path := d.dropInPath(slot, name)
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(filepath.Dir(path)) // only when empty
		reload = true
	}
	if reload {
		if _, err := d.systemctl(ctx, "daemon-reload"); err != nil {
			errs = append(errs, err)
		}
		d.pruneReleasesLocked()
	}
	return errors.Join(errs...)
}

// unitState is what `systemctl show` says of a unit.
type unitState struct {
	ActiveState string // active, activating, deactivating, inactive, failed, ...
	SubState    string // running, auto-restart, dead, failed, ...
	Result      string // success, exit-code, signal, start-limit-hit, ...
	MainPID     int
	NRestarts   int
	StartedAt   time.Time
	ExitCode    string // ExecMainCode: 1 exited, 2 killed, 3 dumped
	ExitStatus  string // ExecMainStatus: exit status or signal number
}

func (u unitState) ended() bool {
	return u.ActiveState == "inactive" || u.ActiveState == "failed"
}

func (u unitState) exit() Exit {
	how := "exit status " + u.ExitStatus
	switch u.ExitCode {
	case "2", "3":
		how = "signal " + u.ExitStatus
	}
	return Exit{
		Reason:    fmt.Sprintf("unit %s (result %s, last %s)", u.ActiveState, u.Result, how),
		CrashLoop: u.Result == "start-limit-hit",
	}
}

const showProps = "ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStartTimestampMonotonic,ExecMainCode,ExecMainStatus"

// show reads the unit's state (systemctl show: the machine-readable
// status).
func (d *Systemd) show(ctx context.Context, slot, name string) (unitState, error) {
	out, err := d.systemctl(ctx, "show", "--property="+showProps, SlotUnit(slot, name))
	if err != nil {
		return unitState{}, err
	}
	var u unitState
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ActiveState":
			u.ActiveState = v
		case "SubState":
			u.SubState = v
		case "Result":
			u.Result = v
		case "MainPID":
			u.MainPID, _ = strconv.Atoi(v)
		case "NRestarts":
			u.NRestarts, _ = strconv.Atoi(v)
		case "ExecMainStartTimestampMonotonic":
			if us, err := strconv.ParseUint(v, 10, 64); err == nil && us > 0 {
				u.StartedAt = monotonicToWall(us)
			}
		case "ExecMainCode":
			u.ExitCode = v
		case "ExecMainStatus":
			u.ExitStatus = v
		}
	}
	if u.ActiveState == "" {
		return unitState{}, fmt.Errorf("systemctl show %s: no ActiveState", SlotUnit(slot, name))
	}
	return u, nil
}

// unitProc is an instance's unit, as the systemd driver watches it: its
// main process may change while systemd restarts it.
type unitProc struct {
	d    *Systemd
	slot string
	name string
	hash string

	mu       sync.Mutex
	st       unitState
	restarts int // NRestarts when watching began

	done     chan struct{}
	finish   sync.Once
	exit     Exit
	detached chan struct{}
	detach   sync.Once
}

func (d *Systemd) newProc(slot, name, hash string, st unitState) *unitProc {
	p := &unitProc{
		d:        d,
		slot:     slot,
		name:     name,
		hash:     hash,
		st:       st,
		restarts: st.NRestarts,
		done:     make(chan struct{}),
		detached: make(chan struct{}),
	}
	if st.ended() {
		p.end(st.exit())
	} else {
		go p.poll()
	}
	return p
}

func (p *unitProc) Name() string          { return p.name }
func (p *unitProc) Hash() string          { return p.hash }
func (p *unitProc) Done() <-chan struct{} { return p.done }
func (p *unitProc) Exit() Exit            { return p.exit }
func (p *unitProc) Detach()               { p.detach.Do(func() { close(p.detached) }) }

func (p *unitProc) Info() ProcInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProcInfo{PID: p.st.MainPID, StartedAt: p.st.StartedAt, Restarts: max(0, p.st.NRestarts-p.restarts)}
}

func (p *unitProc) end(ex Exit) {
	p.finish.Do(func() {
		p.exit = ex
		close(p.done)
	})
}

func (p *unitProc) poll() {
	t := time.NewTicker(p.d.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.detached:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := p.d.show(ctx, p.slot, p.name)
		cancel()
		if err != nil {
			p.d.log.Warn("cannot read unit state", "unit", SlotUnit(p.slot, p.name), "error", err)
			continue
		}
		p.mu.Lock()
		p.st = st
		p.mu.Unlock()
		if st.ended() {
			p.end(st.exit())
			return
		}
	}
}

// Stop runs `systemctl stop`: systemd sends SIGTERM (KillMode=mixed: to the
// main process), waits TimeoutStopSec= (the drain timeout plus 5 s), then
// SIGKILLs the unit's cgroup. timeout only bounds how long the call waits.
func (p *unitProc) Stop(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, p.d.opts.DrainTimeout)+15*time.Second)
	defer cancel()
	if _, err := p.d.systemctl(ctx, "stop", SlotUnit(p.slot, p.name)); err != nil {
		return err
	}
	st, err := p.d.show(ctx, p.slot, p.name)
	if err != nil {
		return err
	}
	if st.ActiveState == "failed" {
		// Its exit is recorded here (end); left failed, the unit would
		// stand in `systemctl --failed` for a process that is gone and
		// whose slot is not the instance's.
		p.d.systemctl(ctx, "reset-failed", SlotUnit(p.slot, p.name)) // fails harmlessly when no longer failed
	}
	p.mu.Lock()
	p.st = st
	p.mu.Unlock()
	if !st.ended() {
		return fmt.Errorf("unit %s still %s after stop", SlotUnit(p.slot, p.name), st.ActiveState)
	}
	p.end(Exit{Reason: "stopped (" + st.exit().Reason + ")"})
	return nil
}
