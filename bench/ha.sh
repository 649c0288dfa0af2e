#!/usr/bin/env bash
# bench/ha.sh — a domain in PostgreSQL served by two admin nodes, with the
# real binary and a real PostgreSQL (Debian's postgresql package, started
# as the tests start it: internal/pgtest, here durable):
#   1. failover: SIGKILL of the admin node the node managers are attached
#      to → every node manager attached to the other (ROUNDS rounds,
#      alternating), and deploys through A → applied by gateways whose
#      node managers watch B, as B shows it (bench/cmd/failover);
#   2. scale: 2,000 simulated node managers spread over the two admin
#      nodes: each admin node's CPU and memory, and PostgreSQL's CPU
#      (bench/nodescale -postgres -admins 2).
# It builds bin/gatehouse, runs both and sums them up. See bench/README.md.
#
# Knobs (environment):
#   ONLY=failover|scale   run one of the two
#   ROUNDS=20        SIGKILL rounds of the failover benchmark
#   DEPLOYS=30       deploys through A timed until B shows them applied
#   NODE_MANAGERS=4  real node managers (node run), a gateway each
#   HEARTBEAT=5s     their node run --heartbeat
#   STOP=0           1: SIGSTOP the admin node instead of SIGKILL (it hangs
#                    with its connections open, as a host lost), SIGKILL it
#                    after the round
#   POLL=5ms         pause between two polls of B's instance list or of
#                    the node managers' sockets
#   NODES=2000       simulated node managers of the scale benchmark
#   ADMINS=2         admin nodes they are spread over
#   NODE_GROUPS=10   groups their instances are spread over
#   WAIT=30s         wait of their blocking queries
#   RAMP=60s         they start at random times over this long
#   WARMUP=30s       pause after the last one started, before measuring
#   WINDOW=60s       measurement window of CPU and memory
#   PROFILE_DIR=dir  also CPU- and heap-profile the first admin node there
#                    (it then runs as bench/nodescale -serve-admin)
#   GATEHOUSE_BIN=path   benchmark this binary instead of building bin/gatehouse
#   GO=go            the go command
set -euo pipefail

ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-20}
DEPLOYS=${DEPLOYS:-30}
NODE_MANAGERS=${NODE_MANAGERS:-4}
HEARTBEAT=${HEARTBEAT:-5s}
STOP=${STOP:-0}
POLL=${POLL:-5ms}
NODES=${NODES:-2000}
ADMINS=${ADMINS:-2}
NODE_GROUPS=${NODE_GROUPS:-10}
WAIT=${WAIT:-30s}
RAMP=${RAMP:-60s}
WARMUP=${WARMUP:-30s}
WINDOW=${WINDOW:-60s}
PROFILE_DIR=${PROFILE_DIR:-}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
GO=${GO:-go}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

command -v "$GO" >/dev/null 2>&1 || die "$GO not found on PATH"
case $ONLY in "" | failover | scale) ;; *) die "ONLY=$ONLY: want failover or scale" ;; esac
for v in ROUNDS DEPLOYS NODE_MANAGERS NODES ADMINS NODE_GROUPS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: must be a number"
done
for v in NODE_MANAGERS NODES ADMINS NODE_GROUPS; do
	((${!v} > 0)) || die "$v=${!v}: must be positive"
done
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && ! command -v postgres >/dev/null 2>&1; then
	die "PostgreSQL is not installed: apt-get install -y postgresql (the benchmark starts a server of its own; nothing is configured system-wide)"
fi

# The simulator holds a connection per node; the admin nodes as many.
want_files=$((2 * NODES + 512))
if (($(ulimit -n) < want_files)); then
	ulimit -n "$want_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
		die "open files limit $(ulimit -n) < $want_files: raise it (ulimit -n) or lower NODES"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-ha-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"

if [[ -z $GATEHOUSE_BIN ]]; then
	log "building bin/gatehouse"
	"$GO" build -o bin/gatehouse ./cmd/gatehouse || die "go build ./cmd/gatehouse failed"
	GATEHOUSE_BIN=bin/gatehouse
fi
[[ -x $GATEHOUSE_BIN ]] || die "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable"
GATEHOUSE_BIN=$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")
"$GO" build -o "$WORK/failover" ./bench/cmd/failover || die "go build ./bench/cmd/failover failed"
"$GO" build -o "$WORK/nodescale" ./bench/nodescale || die "go build ./bench/nodescale failed"

echo "Gatehouse high-availability benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  repo:    $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "  binary:  $GATEHOUSE_BIN"
echo "  machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  go:      $("$GO" version)"
echo "  postgres: $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

if [[ -z $ONLY || $ONLY == failover ]]; then
	FAILOVER_CMD=("$WORK/failover" -bin "$GATEHOUSE_BIN" -nodes "$NODE_MANAGERS" -rounds "$ROUNDS" -deploys "$DEPLOYS"
		-heartbeat "$HEARTBEAT" -poll "$POLL" -v)
	[[ $STOP == 1 ]] && FAILOVER_CMD+=(-stop)
	echo
	echo "\$ bench/cmd/failover ${FAILOVER_CMD[*]:1}"
	"${FAILOVER_CMD[@]}" 2>&1 | tee "$WORK/failover.txt" || die "failover benchmark failed"
fi

if [[ -z $ONLY || $ONLY == scale ]]; then
	SCALE_CMD=("$WORK/nodescale" -bin "$GATEHOUSE_BIN" -postgres -admins "$ADMINS" -nodes "$NODES" -groups "$NODE_GROUPS"
		-wait "$WAIT" -ramp "$RAMP" -warmup "$WARMUP" -window "$WINDOW")
	if [[ -n $PROFILE_DIR ]]; then
		mkdir -p "$PROFILE_DIR"
		SCALE_CMD+=(-profile "$(cd "$PROFILE_DIR" && pwd)")
	fi
	echo
	echo "\$ bench/nodescale ${SCALE_CMD[*]:1}"
	"${SCALE_CMD[@]}" 2>&1 | tee "$WORK/scale.txt" || die "scale benchmark failed"
fi

echo
echo "Summary:"
if [[ -s $WORK/failover.txt ]]; then
	grep -E '^  (deploy through A|every node manager attached)' "$WORK/failover.txt" | sed 's/^  /  failover: /'
	grep -E 'WARNING' "$WORK/failover.txt" || true
fi
if [[ -s $WORK/scale.txt ]]; then
	grep -E '^    (admin CPU|admin RSS|PostgreSQL CPU|heartbeats) ' "$WORK/scale.txt" | sed 's/^    /  scale: /'
fi
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) CPUs; higher means other work shared the machine)"
