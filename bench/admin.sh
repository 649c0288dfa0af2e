#!/usr/bin/env bash
# bench/admin.sh — admin node benchmarks: deploying a 10,000-route
# configuration (on bbolt and on PostgreSQL), and 200 concurrent readers of
# the instance list over HTTPS.
# They are Go benchmarks in adminnode/api/bench_test.go; this runs them with
# sensible counts and sums them up. See bench/README.md.
#
# Knobs (environment):
#   DEPLOYS=20      deploys per run (-benchtime ${DEPLOYS}x) of the deploy benchmarks
#   REQUESTS=6000   GET /instances per run (-benchtime ${REQUESTS}x), split over 200 readers
#   COUNT=3         runs of each benchmark (-count); the median run is reported
#   STORE=both      stores of the deploy benchmarks: bolt, postgres or both (the
#                   PostgreSQL ones start a server of their own through
#                   internal/pgtest: Debian's postgresql package must be installed)
#   PROFILE_DIR=dir also CPU-profile the HTTP deploy into dir (deploy.cpu, api.test)
#                   and print where the time goes (go tool pprof -top)
#   GO=go           the go command
set -euo pipefail

DEPLOYS=${DEPLOYS:-20}
REQUESTS=${REQUESTS:-6000}
COUNT=${COUNT:-3}
STORE=${STORE:-both}
PROFILE_DIR=${PROFILE_DIR:-}
GO=${GO:-go}

# Target the deploy is held to (printed for context, not enforced).
TARGET_DEPLOY_MS=200

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PKG=./adminnode/api

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

command -v "$GO" >/dev/null 2>&1 || die "$GO not found on PATH"
for v in DEPLOYS REQUESTS COUNT; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: must be a positive integer"
done
case $STORE in
bolt) DEPLOY_RE='^Benchmark(Deploy|Freeze|Sign)10kRoutes$' ;;
# The PostgreSQL figures must not be skipped silently when asked for.
postgres) DEPLOY_RE='^Benchmark(Deploy|Freeze)10kRoutesPG$'; export GATEHOUSE_TEST_REQUIRE_POSTGRES=1 ;;
both) DEPLOY_RE='^Benchmark((Deploy|Freeze|Sign)10kRoutes|(Deploy|Freeze)10kRoutesPG)$' ;;
*) die "STORE=$STORE: must be bolt, postgres or both" ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-admin-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"

DEPLOY_CMD=("$GO" test -run '^$' -bench "$DEPLOY_RE"
	-benchtime "${DEPLOYS}x" -count "$COUNT" "$PKG")
LIST_CMD=("$GO" test -run '^$' -bench '^BenchmarkInstanceListHTTPS$'
	-benchtime "${REQUESTS}x" -count "$COUNT" "$PKG")

echo "Gatehouse admin node benchmarks — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  repo:    $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "  machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  go:      $("$GO" version)"
echo

# Raw output goes to the terminal as it comes (every run, for the spread)
# and to a file for the summary.
echo "\$ ${DEPLOY_CMD[*]}"
"${DEPLOY_CMD[@]}" 2>&1 | tee "$WORK/deploy.txt" || die "deploy benchmarks failed"
echo
echo "\$ ${LIST_CMD[*]}"
"${LIST_CMD[@]}" 2>&1 | tee "$WORK/list.txt" || die "instance list benchmark failed"

# metric FILE BENCH UNIT: the value reported with UNIT on every line of BENCH
# (any -GOMAXPROCS suffix), one per line. Go prints "value unit" pairs.
metric() {
	awk -v name="$2" -v unit="$3" '
	$1 ~ ("^" name "(-[0-9]+)?$") {
		for (i = 3; i <= NF; i++) if ($i == unit) print $(i - 1)
	}' "$1"
}
# stats: "median min max" of the numbers on stdin.
stats() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
	}'
}

echo
echo "Result (median of $COUNT run(s); min and max beside it):"
printf '  %-28s %9s %9s %9s\n' benchmark "ms/op" min max
BENCHES=()
[[ $STORE == postgres ]] || BENCHES+=(Deploy10kRoutes Freeze10kRoutes Sign10kRoutes)
[[ $STORE == bolt ]] || BENCHES+=(Deploy10kRoutesPG Freeze10kRoutesPG)
for b in "${BENCHES[@]}"; do
	if ! read -r med lo hi < <(metric "$WORK/deploy.txt" "Benchmark$b" ms/op | stats); then
		# With STORE=both, PostgreSQL absent skips its benchmarks (saying so above).
		if [[ $b == *PG && $STORE == both ]] && grep -q "^--- SKIP: Benchmark$b" "$WORK/deploy.txt"; then
			printf '  %-28s %9s\n' "$b" skipped
			continue
		fi
		die "no ms/op for Benchmark$b in the output"
	fi
	printf '  %-28s %9s %9s %9s\n' "$b" "$med" "$lo" "$hi"
	case $b in
	Deploy10kRoutes) DEPLOY_MS=$med ;;
	Deploy10kRoutesPG) DEPLOY_PG_MS=$med ;;
	esac
done
for s in "" PG; do
	var=DEPLOY${s:+_PG}_MS
	[[ -n ${!var:-} ]] || continue
	read -r KB _ < <(metric "$WORK/deploy.txt" "BenchmarkDeploy10kRoutes$s" canonical-KB | stats)
	read -r DBMB _ < <(metric "$WORK/deploy.txt" "BenchmarkDeploy10kRoutes$s" db-MB | stats)
	name=bbolt where="store file"
	[[ $s == PG ]] && name=PostgreSQL where="database"
	awk -v ms="${!var}" -v t="$TARGET_DEPLOY_MS" -v n="$name" 'BEGIN {
		printf "  deploy of 10,000 routes on %-10s %7.1f ms   (target <= %d ms: %s)\n", n, ms, t, (ms <= t) ? "met" : "NOT met"
	}'
	echo "    canonical configuration ${KB} KiB; $where after ${DEPLOYS} deploys: ${DBMB} MiB"
done
if [[ -n ${DEPLOY_MS:-} && -n ${DEPLOY_PG_MS:-} ]]; then
	# Both from this one run, under the same load: the ratio is the figure
	# that holds on a busy machine, where the absolute times do not.
	awk -v b="$DEPLOY_MS" -v p="$DEPLOY_PG_MS" 'BEGIN {
		printf "  PostgreSQL / bbolt, deploy over HTTP: %.2f\n", p / b
	}'
fi

# Readers: the run with the median req/s, and that same run's latencies (not
# the best p50 of one run beside the best p99 of another).
paste <(metric "$WORK/list.txt" BenchmarkInstanceListHTTPS req/s) \
	<(metric "$WORK/list.txt" BenchmarkInstanceListHTTPS p50-ms) \
	<(metric "$WORK/list.txt" BenchmarkInstanceListHTTPS p99-ms) \
	<(metric "$WORK/list.txt" BenchmarkInstanceListHTTPS new-conns) \
	<(metric "$WORK/list.txt" BenchmarkInstanceListHTTPS resp-KB) >"$WORK/list.tsv"
[[ -s $WORK/list.tsv ]] || die "no figures for BenchmarkInstanceListHTTPS in the output"
read -r RPS P50 P99 NEWCONNS RESPKB < <(sort -g "$WORK/list.tsv" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
echo
echo "  200 readers of GET /instances over HTTPS (200 instances, ${RESPKB} KiB per reply), median run by req/s:"
printf '    req/s %.0f   p50 %s ms   p99 %s ms\n' "$RPS" "$P50" "$P99"
if [[ $NEWCONNS != 0 ]]; then
	echo "    WARNING: $NEWCONNS connection(s) opened during the measurement; handshakes are in the latencies"
fi
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) CPUs; higher means other work shared the machine)"

if [[ -n $PROFILE_DIR ]]; then
	mkdir -p "$PROFILE_DIR"
	PROFILE_DIR=$(cd "$PROFILE_DIR" && pwd)
	echo
	log "profiling BenchmarkDeploy10kRoutes into $PROFILE_DIR"
	"$GO" test -run '^$' -bench '^BenchmarkDeploy10kRoutes$' -benchtime "${DEPLOYS}x" \
		-cpuprofile "$PROFILE_DIR/deploy.cpu" -o "$PROFILE_DIR/api.test" "$PKG" >"$WORK/profile.txt" 2>&1 ||
		{ cat "$WORK/profile.txt" >&2; die "profiling run failed"; }
	echo "Where the deploy's CPU goes (flat, then cumulative):"
	"$GO" tool pprof -top -nodecount=25 "$PROFILE_DIR/api.test" "$PROFILE_DIR/deploy.cpu" 2>/dev/null
	"$GO" tool pprof -top -cum -nodecount=40 "$PROFILE_DIR/api.test" "$PROFILE_DIR/deploy.cpu" 2>/dev/null | tail -n +7
	echo "  (more: $GO tool pprof -http=: $PROFILE_DIR/api.test $PROFILE_DIR/deploy.cpu)"
fi
