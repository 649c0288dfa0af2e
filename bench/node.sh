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
#      (bench/cmd/detection);
#   4. traffic: 1,000 simulated node managers each POST a batch of traffic
#      counts every 10 s (the admin node's batches/s, series/s, CPU, memory,
#      ack latency, store growth), and a 24 h query at 1 min of one group
#      whose day of points was written into the store (its p50/p99)
#      (bench/cmd/trafficscale).
# It builds bin/gatehouse, runs all four and sums them up. See
# bench/README.md.
#
# Knobs (environment):
#   ONLY=propagation|nodescale|detection|traffic   run one of the four
#   ROUNDS=100       deployments measured by the propagation benchmark
#   INSTANCES=10     gateway instances on the host
#   POLL=2ms         pause between two polls of the instance lists
#   IDLE=10s         idle window before the rounds, for every process's idle CPU
#   NODES=1000       simulated node managers
#   NODE_GROUPS=10   groups they are spread over
#   WAIT=30s         wait of their blocking queries
#   RAMP=30s         they start at random times over this long
#   WARMUP=30s       pause after the last one started
#   WINDOW=60s       measurement window of CPU, memory, heartbeats (traffic:
#                    120s, so that it holds one of the admin node's roll-ups)
#   TRIALS=10        kills measured by the detection benchmark
#   MEMBERS=3        gateway instances of its group (the victim included)
#   DETECT_POLL=10ms pause between two polls of a /status or the admin node
#   TRAFFIC=ingest,query   the traffic benchmarks to run
#   TRAFFIC_GROUPS=50    groups of the traffic benchmark's domain
#   TRAFFIC_ROUTES=20    routes of each
#   TRAFFIC_INSTANCES=0  instances of each, over the NODES hosts (0: 10, or
#                    more so that every host runs one: 20 for 1,000)
#   TRAFFIC_INTERVAL=10s how often each node sends a batch
#   QUERIES=200      queries timed one after the other, and again spread over
#   QUERY_CONCURRENCY=4  clients at once
#   PROFILE_DIR=dir  also CPU- and heap-profile the admin node there (it then
#                    runs as bench/nodescale -serve-admin: adminnode.Run + pprof)
#   GATEHOUSE_BIN=path   benchmark this binary instead of building bin/gatehouse
#   GO=go            the go command
set -euo pipefail

ONLY=${ONLY:-}
ROUNDS=${ROUNDS:-100}
INSTANCES=${INSTANCES:-10}
POLL=${POLL:-2ms}
IDLE=${IDLE:-10s}
NODES=${NODES:-1000}
NODE_GROUPS=${NODE_GROUPS:-10}
WAIT=${WAIT:-30s}
RAMP=${RAMP:-30s}
WARMUP=${WARMUP:-30s}
WINDOW=${WINDOW:-}
TRIALS=${TRIALS:-10}
MEMBERS=${MEMBERS:-3}
DETECT_POLL=${DETECT_POLL:-10ms}
TRAFFIC=${TRAFFIC:-ingest,query}
TRAFFIC_GROUPS=${TRAFFIC_GROUPS:-50}
TRAFFIC_ROUTES=${TRAFFIC_ROUTES:-20}
TRAFFIC_INSTANCES=${TRAFFIC_INSTANCES:-0}
TRAFFIC_INTERVAL=${TRAFFIC_INTERVAL:-10s}
QUERIES=${QUERIES:-200}
QUERY_CONCURRENCY=${QUERY_CONCURRENCY:-4}
PROFILE_DIR=${PROFILE_DIR:-}
GATEHOUSE_BIN=${GATEHOUSE_BIN:-}
GO=${GO:-go}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

command -v "$GO" >/dev/null 2>&1 || die "$GO not found on PATH"
case $ONLY in "" | propagation | nodescale | detection | traffic) ;; *) die "ONLY=$ONLY: want propagation, nodescale, detection or traffic" ;; esac
for v in ROUNDS INSTANCES NODES NODE_GROUPS TRIALS MEMBERS TRAFFIC_GROUPS TRAFFIC_ROUTES QUERIES QUERY_CONCURRENCY; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
[[ $TRAFFIC_INSTANCES =~ ^[0-9]+$ ]] || die "TRAFFIC_INSTANCES=$TRAFFIC_INSTANCES: must be a number (0: the default)"

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
"$GO" build -o "$WORK/trafficscale" ./bench/cmd/trafficscale || die "go build ./bench/cmd/trafficscale failed"

echo "Gatehouse node manager benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  repo:    $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "  binary:  $GATEHOUSE_BIN"
echo "  machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  go:      $("$GO" version)"

if [[ -z $ONLY || $ONLY == propagation ]]; then
	PROP_CMD=("$WORK/propagation" -bin "$GATEHOUSE_BIN" -instances "$INSTANCES" -rounds "$ROUNDS" -poll "$POLL" -idle "$IDLE" -v)
	echo
	echo "\$ bench/cmd/propagation ${PROP_CMD[*]:1}"
	"${PROP_CMD[@]}" 2>&1 | tee "$WORK/propagation.txt" || die "propagation benchmark failed"
fi

if [[ -z $ONLY || $ONLY == nodescale ]]; then
	SCALE_CMD=("$WORK/nodescale" -bin "$GATEHOUSE_BIN" -nodes "$NODES" -groups "$NODE_GROUPS" -wait "$WAIT"
		-ramp "$RAMP" -warmup "$WARMUP" -window "${WINDOW:-60s}")
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

if [[ -z $ONLY || $ONLY == traffic ]]; then
	TRAFFIC_CMD=("$WORK/trafficscale" -bin "$GATEHOUSE_BIN" -run "$TRAFFIC" -nodes "$NODES" -groups "$TRAFFIC_GROUPS"
		-routes "$TRAFFIC_ROUTES" -instances "$TRAFFIC_INSTANCES" -interval "$TRAFFIC_INTERVAL" -warmup "$WARMUP"
		-window "${WINDOW:-120s}" -queries "$QUERIES" -query-concurrency "$QUERY_CONCURRENCY")
	echo
	echo "\$ bench/cmd/trafficscale ${TRAFFIC_CMD[*]:1}"
	"${TRAFFIC_CMD[@]}" 2>&1 | tee "$WORK/traffic.txt" || die "traffic benchmark failed"
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
if [[ -s $WORK/traffic.txt ]]; then
	grep -E '^    (absorbed|ack latency|admin CPU|admin RSS|store pages) ' "$WORK/traffic.txt" | sed 's/^    /  traffic /'
	grep -E '^    (growth|[0-9]+ sequential|[0-9]+, [0-9]+ at once) ' "$WORK/traffic.txt" | sed 's/^    /  traffic /'
fi
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) CPUs; higher means other work shared the machine)"
