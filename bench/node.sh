#!/usr/bin/env bash
# bench/node.sh — node manager benchmarks with the real binary:
#   1. propagation: POST /deployments → every one of 10 gateway instances on
#      one host reported applied, as the admin node shows it
#      (bench/cmd/propagation);
#   2. scale: the admin node's CPU and memory with 1,000 simulated node
#      managers, each with its own mTLS connection, heartbeats and blocking
#      queries, and the fan-out of deployments to them (bench/nodescale);
#   3. detection: kill -9 a gateway of a group (its host's node manager
#      killed first, so that it stays down) → every surviving peer's gossip
#      lists it dead, and the admin node shows it unreachable
#      (bench/cmd/detection).
# It builds bin/gatehouse, runs all three and sums them up. See
# bench/README.md.
#
# Knobs (environment):
#   ONLY=propagation|nodescale|detection   run one of the three
#   ROUNDS=30        deployments measured by the propagation benchmark
#   INSTANCES=10     gateway instances on the host
#   POLL=2ms         pause between two polls of the instance lists
#   NODES=1000       simulated node managers
#   NODE_GROUPS=10   groups they are spread over
#   WAIT=30s         wait of their blocking queries
#   RAMP=30s         they start at random times over this long
#   WARMUP=30s       pause after the last one started
#   WINDOW=60s       measurement window of CPU, memory, heartbeats
#   TRIALS=10        kills measured by the detection benchmark
#   MEMBERS=3        gateway instances of its group (the victim included)
#   DETECT_POLL=10ms pause between two polls of a /status or the admin node
#   PROFILE_DIR=dir  also CPU- and heap-profile the admin node there (it then
#                    runs as bench/nodescale -serve-admin: adminnode.Run + pprof)
#   GATEHOUSE_BIN=path   benchmark this binary instead of building bin/gatehouse
#   GO=go            the go command
set -euo pipefail

ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-30}
INSTANCES=${INSTANCES:-10}
POLL=${POLL:-2ms}
NODES=${NODES:-1000}
NODE_GROUPS=${NODE_GROUPS:-10}
WAIT=${WAIT:-30s}
RAMP=${RAMP:-30s}
WARMUP=${WARMUP:-30s}
WINDOW=${WINDOW:-60s}
TRIALS=${TRIALS:-10}
MEMBERS=${MEMBERS:-3}
DETECT_POLL=${DETECT_POLL:-10ms}
PROFILE_DIR=${PROFILE_DIR:-}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
GO=${GO:-go}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

command -v "$GO" >/dev/null 2>&1 || die "$GO not found on PATH"
case $ONLY in "" | propagation | nodescale | detection) ;; *) die "ONLY=$ONLY: want propagation, nodescale or detection" ;; esac
for v in ROUNDS INSTANCES NODES NODE_GROUPS TRIALS MEMBERS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done

# The simulator holds a connection per node; the admin node as many.
want_files=$((2 * NODES + 512))
if (($(ulimit -n) < want_files)); then
	ulimit -n "$want_files" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
		die "open files limit $(ulimit -n) < $want_files: raise it (ulimit -n) or lower NODES"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-node-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"

if [[ -z $GATEHOUSE_BIN ]]; then
	log "building bin/gatehouse"
	"$GO" build -o bin/gatehouse ./cmd/gatehouse || die "go build ./cmd/gatehouse failed"
	GATEHOUSE_BIN=bin/gatehouse
fi
[[ -x $GATEHOUSE_BIN ]] || die "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable"
GATEHOUSE_BIN=$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")
"$GO" build -o "$WORK/propagation" ./bench/cmd/propagation || die "go build ./bench/cmd/propagation failed"
"$GO" build -o "$WORK/nodescale" ./bench/nodescale || die "go build ./bench/nodescale failed"
"$GO" build -o "$WORK/detection" ./bench/cmd/detection || die "go build ./bench/cmd/detection failed"

echo "Gatehouse node manager benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  repo:    $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "  binary:  $GATEHOUSE_BIN"
echo "  machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  go:      $("$GO" version)"

if [[ -z $ONLY || $ONLY == propagation ]]; then
	PROP_CMD=("$WORK/propagation" -bin "$GATEHOUSE_BIN" -instances "$INSTANCES" -rounds "$ROUNDS" -poll "$POLL" -v)
	echo
	echo "\$ bench/cmd/propagation ${PROP_CMD[*]:1}"
	"${PROP_CMD[@]}" 2>&1 | tee "$WORK/propagation.txt" || die "propagation benchmark failed"
fi

if [[ -z $ONLY || $ONLY == nodescale ]]; then
	SCALE_CMD=("$WORK/nodescale" -bin "$GATEHOUSE_BIN" -nodes "$NODES" -groups "$NODE_GROUPS" -wait "$WAIT"
		-ramp "$RAMP" -warmup "$WARMUP" -window "$WINDOW")
	if [[ -n $PROFILE_DIR ]]; then
		mkdir -p "$PROFILE_DIR"
		SCALE_CMD+=(-profile "$(cd "$PROFILE_DIR" && pwd)")
	fi
	echo
	echo "\$ bench/nodescale ${SCALE_CMD[*]:1}"
	"${SCALE_CMD[@]}" 2>&1 | tee "$WORK/nodescale.txt" || die "scale benchmark failed"
fi

if [[ -z $ONLY || $ONLY == detection ]]; then
	DETECT_CMD=("$WORK/detection" -bin "$GATEHOUSE_BIN" -trials "$TRIALS" -members "$MEMBERS" -poll "$DETECT_POLL" -v)
	echo
	echo "\$ bench/cmd/detection ${DETECT_CMD[*]:1}"
	"${DETECT_CMD[@]}" 2>&1 | tee "$WORK/detection.txt" || die "detection benchmark failed"
fi

echo
echo "Summary:"
if [[ -s $WORK/propagation.txt ]]; then
	grep -E '^  polling:' "$WORK/propagation.txt" | sed 's/^  /  propagation /'
	grep -E '^  propagation p50' "$WORK/propagation.txt"
	grep -E 'WARNING' "$WORK/propagation.txt" || true
fi
if [[ -s $WORK/nodescale.txt ]]; then
	grep -E '^    (admin CPU|admin RSS|heartbeats|connections) ' "$WORK/nodescale.txt" | sed 's/^    /  /'
	grep -E '^    deploy ' "$WORK/nodescale.txt" | sed 's/^    /  fan-out: /'
fi
if [[ -s $WORK/detection.txt ]]; then
	grep -E '^  \((a|b)\) (every peer|admin node):' "$WORK/detection.txt" | sed 's/^  /  detection /'
	grep -E 'WARNING' "$WORK/detection.txt" || true
fi
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) CPUs; higher means other work shared the machine)"
