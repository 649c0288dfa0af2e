// Package supervisor runs the gateway processes of a host for the node
// manager: it starts the desired instances, restarts them when they exit,
// stops those no longer desired, restarts those whose flags changed, and
// finds its gateways again after the node manager itself restarted, without
// restarting them.
//
// # Model
//
// A Spec is what one instance runs: binary, arguments, environment (the
// per-instance secret travels there as GATEHOUSE_INSTANCE_SECRET). Its Hash
// over binary, arguments and environment decides "flags changed". A State
// is what the supervisor shows of an instance (GET /v1/instances, the
// heartbeat): process state, pid, restarts, last exit, next start.
//
//	s, _ := supervisor.New(ctx, supervisor.Options{Driver: drv, Logger: log})
//	s.Reconcile(ctx, specs) // start missing, stop undesired, restart changed
//	s.Restart(ctx, "web-1")
//	s.States()
//	s.Close()               // the gateways keep running
//
// The supervisor owns the policy; a Driver only starts, finds and stops
// processes. There are two:
//
//   - Exec (the default): gateways are child processes of the node manager.
//   - Systemd: each gateway is an instance of the template unit
//     gatehouse-gateway@.service (or of its twin
//     gatehouse-gateway-b@.service, below), driven with systemctl.
//
// # Restarts, backoff and crash loops
//
// A process that exits is started again after a delay: BackoffMin (100 ms)
// after a healthy run, then doubling with each consecutive short run up to
// BackoffMax (30 s). A run is short when it lasts less than MinRunTime
// (10 s); a longer run resets the count. After CrashLoopAfter (5)
// consecutive short runs the state is "crash-loop" instead of "backoff": a
// count of consecutive short runs was chosen over "N exits in a window"
// because it needs no window and says the same thing with the doubling
// delay (5 short runs take 100+200+400+800 ms at least). A crash-looping
// instance is still retried at the backoff's pace, and its new process
// shows "crash-loop" too until it has lasted MinRunTime, so that the state
// does not flicker between running and crash-loop. New flags (a Reconcile
// with another hash) or a Restart start it at once.
//
// Starting is quick (fork and exec; "starting" is the state while the
// driver works); whether the gateway is ready is what the gateway reports
// to the node manager, not the supervisor's business.
//
// # Stopping, and the node manager's own end
//
// Only Reconcile (an instance no longer desired, or changed) and Restart
// stop a gateway: SIGTERM to its process group, DrainTimeout (35 s: the
// gateway's own 30 s drain and a margin), then SIGKILL. Close, or the node
// manager's death, leaves every gateway running: they keep serving with the
// control plane down, and the next supervisor adopts them. Reconcile starts
// new instances at once, without waiting for the stops of undesired ones:
// a new instance that needs the port of one being stopped fails to bind and
// is restarted by the backoff once the port is free.
//
// # Replacing without downtime
//
// With Options.ZeroDowntime and a driver that is a Replacer (both are), a
// Restart or changed flags do not stop the running process first: the
// new one is started beside it with --takeover (the gateway takes the
// old one's listening sockets, package gateway/handover), and the old one
// drains and exits once the new one is ready. The supervisor waits for
// that exit, then makes the new process the instance's (Replacer.Promote
// writes its pid file; until then the old one's stays, so that a node
// manager restarting meanwhile adopts the process that serves). A new
// process that exits first, or that is not serving (Replacer.Serving: the
// file takeover.ready, written by gateway --takeover-ready-file, names its
// pid) when ReadyTimeout (60 s) has passed, is stopped; the old one stays
// the instance's, with the reason in LastError, and the call returns it. A
// new process that serves is kept while the old one drains, for up to
// DrainTimeout more, after which the old one is stopped.
//
// Under systemd the new process cannot run in the old one's unit (one main
// process per unit; `systemctl restart` stops first), so each instance has
// two units, slots a and b: gatehouse-gateway@NAME and
// gatehouse-gateway-b@NAME, instances of two templates that differ only in
// their environment file (EnvDir/NAME.env, EnvDir/b/NAME.env). A
// replacement writes the other slot's environment file (the new arguments
// plus --takeover and a ready file in the state directory both slots
// share, the one path a gateway may write) and starts its unit; Promote
// records that slot in EnvDir/NAME.slot (JSON with a schema version; no
// file is slot a, the layout of hosts from before the second slot),
// enables its unit and disables the other's. Both units have the same
// User= (DynamicUser= gives units of one user name one uid: the
// handover's SO_PEERCRED check passes) and the same StateDirectory= (the
// bbolt file handed over is the same file). Keeping one environment file
// per slot keeps the hash of what each unit runs, for adoption. Every
// start under systemd passes --takeover, which takes nothing when no
// gateway of the instance runs, and otherwise the sockets of the one left
// in the other slot, which would block the bind.
//
// A Spec whose binary is not the templates' (a release, which the node
// manager keeps in its own data dir, closed to the gateways' user) runs a
// copy of it in SystemdOptions.ReleaseDir (one directory per content
// hash, 0755), named by a drop-in of its slot's unit (<unit>.d/
// release.conf: ExecStart= replaced), with a daemon-reload when the
// drop-in changes; the drop-in goes when the unit runs the templates'
// binary again, and copies no drop-in names are removed.
//
// # Exec driver
//
//   - Each child runs in its own process group (Setpgid) with no parent-death
//     signal, so that neither a signal to the node manager's group nor its
//     death (even SIGKILL) reaches the gateways. A node manager run by
//     systemd with this driver needs KillMode=process in its own unit, or
//     systemd kills the gateways with its cgroup when it stops.
//   - Files of instance NAME are in DataDir/instances/NAME (also its working
//     directory; the gateway's --data-dir can be a directory inside it):
//     gateway.pid and gateway.log.
//   - gateway.pid (JSON, written atomically after the start) holds the pid,
//     the process's start time (field 22 of /proc/PID/stat), the boot id,
//     the full command line and the spec hash. A new supervisor adopts the
//     process only if the boot is the same, the pid lives and is not a
//     zombie, its start time is the recorded one and /proc/PID/cmdline is
//     the recorded command line: a pid reused by another process is never
//     adopted (nor signalled), and its stale pid file is removed. The check
//     is made again after os.FindProcess opened a pidfd, so the handle
//     designates that very process and its signals cannot reach a later
//     process with the same pid. Not kept: the environment (it holds the
//     secret); an adopted process whose instance no Reconcile has named yet
//     and that exits is shown as "exited" until a Reconcile gives its Spec.
//   - An adopted process is not our child: its exit is noticed by polling
//     (PollInterval, 500 ms: signal 0 through the pidfd, and its /proc stat
//     for a zombie and the start time) and its exit status is unknown. Our
//     own children are reaped with Wait, which goes on after Close so that
//     no zombie is left.
//   - Output: the child's stdout and stderr are gateway.log itself, opened
//     with O_APPEND, not pipes through the node manager: the log keeps being
//     written while the node manager is down or restarting. Rotation by size
//     (LogMaxSize 10 MiB, LogKeep 3: gateway.log.1 is the newest) is by
//     rename before a start, and by copy-then-truncate while a process
//     writes (checked every PollInterval, for adopted processes too); a line
//     written between the copy and the truncation is lost, the price of a
//     log that survives the node manager. Appending makes the child's next
//     write land at the start of the truncated file, without a hole.
//   - Environment: the node manager's own, without its GATEHOUSE_* variables,
//     plus Spec.Env.
//   - Not guarded: a node manager killed between the fork and the pid file
//     leaves a gateway it cannot adopt (the next one's duplicate fails to
//     bind its ports); two node managers on one data dir (the node manager's
//     store lock prevents it); a new gatehouse binary installed at the same
//     path does not restart the gateways (same hash): Restart them.
//
// # Systemd driver
//
// UnitFile renders gatehouse-gateway@.service (and, for slot b,
// gatehouse-gateway-b@.service): ExecStart=BINARY
// $GATEHOUSE_GATEWAY_ARGS with the arguments and Spec.Env in an environment
// file per instance and slot (EnvFile: /etc/gatehouse/gateway/NAME.env, 0600, with
// the spec hash in a comment for adoption); DynamicUser=yes with
// User=gatehouse-gateway (systemd makes the user, or uses an existing one
// of that name: nobody has to create it); StateDirectory=
// gatehouse-gateway/NAME, the gateway's data dir (SystemdDataDir) and
// working directory, made by systemd and owned by that user;
// Restart=on-failure with RestartSec=100ms (and RestartSteps= up to 30 s
// from systemd 254), StartLimitBurst=5 in 60 s, KillSignal=SIGTERM,
// TimeoutStopSec= the drain timeout plus 5 s, and hardening:
// NoNewPrivileges, ProtectSystem=strict (the state directory is the one
// writable path), PrivateTmp, ProtectHome, PrivateDevices, the kernel
// and cgroup protections, a @system-service syscall filter, IP and Unix
// sockets only, and CAP_NET_BIND_SERVICE as the one capability (for :80 and
// :443). Since systemd splits $GATEHOUSE_GATEWAY_ARGS at whitespace, an
// argument may not hold any. The driver installs the unit (daemon-reload
// when it changed), writes the environment file, enables the instance
// (WantedBy=multi-user.target: gateways start at boot, and the node
// manager adopts them) and runs `systemctl restart`, all in the
// recorded slot; it follows the
// unit with `systemctl show` (the machine-readable status: main pid,
// NRestarts, result) every PollInterval, and stops it with `systemctl
// stop`. systemd restarts a crashing gateway by itself (counted in
// Restarts); when it gives up (start-limit-hit) the supervisor shows a
// crash loop and retries with its own backoff after `systemctl
// reset-failed`. Adoption: the instances with an environment file whose
// recorded slot's unit is active, or the other slot's, recorded then,
// when it runs and the recorded one has ended or takeover.ready names the
// other's process (a replacement finished while no node manager watched). Removal: both units disabled, environment files and
// slot record deleted; the state directory stays. Gateways log to the journal (SyslogIdentifier=
// gatehouse-gateway-NAME).
//
// systemctl runs through the Runner interface: the tests here check the
// commands with a fake, and check the generated unit with `systemd-analyze
// verify` (skipped, saying so, where systemd-analyze is not installed).
// TestSystemdReplace checks replacements into the other slot and back,
// the slot record and adoption with the fake. The end-to-end tests
// TestSystemdNode and TestSystemdRestartWithoutDowntime
// (e2e/systemd_test.go) run the driver and the node manager's unit under a
// real systemd, booted as PID 1 of a container (internal/nspawn), the
// latter replacing a gateway under load without a failed request.
//
// # Tests
//
// The exec tests run real processes and real signals: TestMain builds
// testdata/fakegw, a stand-in gateway (sleeps until SIGTERM, or exits at
// once, or ignores SIGTERM, or serves HTTP, or writes log lines). One test
// runs the node manager as a process of its own and SIGKILLs it.
package supervisor
