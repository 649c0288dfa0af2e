#!/usr/bin/env bash
# bench/proxy.sh — compare the same upstream behind nginx proxy_pass and behind
# the Gatehouse gateway, in one run, on loopback. See bench/README.md.
#
# Knobs (environment):
#   DURATION=15s  CONNS=64  THREADS=2   wrk settings of each measured run
#   WARMUP=3s                           wrk warm-up before each measured run
#   ROUNDS=2                            rounds of (nginx, gateway); best run of each is kept
#   UPSTREAM_PORT=19001  NGINX_PORT=19080  GATEWAY_PORT=19180  STATUS_PORT=19185
#   GATEWAY_BIN=path                    use this gateway binary instead of building bin/gatehouse
#   SKIP_GATEWAY=1                      measure nginx only (for testing the harness)
#   POLICY_RUN=1                        also measure a second gateway whose route runs
#                                       key-auth + rate-limit (local, far above the load)
#                                       + request-id (metrics are always on); POLICY_PORT=19280
set -euo pipefail

DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-2}
UPSTREAM_PORT=${UPSTREAM_PORT:-19001}
NGINX_PORT=${NGINX_PORT:-19080}
GATEWAY_PORT=${GATEWAY_PORT:-19180}
STATUS_PORT=${STATUS_PORT:-19185}
SKIP_GATEWAY=${SKIP_GATEWAY:-0}
POLICY_RUN=${POLICY_RUN:-0}
POLICY_PORT=${POLICY_PORT:-19280}
POLICY_STATUS_PORT=${POLICY_STATUS_PORT:-19285}
BENCH_KEY=bench-key-0123456789

# Targets the gateway is held to (printed for context).
TARGET_RPS_RATIO=1.0 # gateway throughput >= 1.0x nginx
TARGET_P99_RATIO=1.5 # gateway p99 <= 1.5x nginx

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- prerequisites
missing=()
for tool in nginx wrk curl; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
	die "missing ${missing[*]}; install with: apt-get install -y nginx-light wrk curl"
fi
if [[ $SKIP_GATEWAY != 1 && -z ${GATEWAY_BIN:-} ]]; then
	command -v go >/dev/null 2>&1 || die "go not found on PATH (needed to build the gateway)"
fi

# ---------------------------------------------------------------- work dir and cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
PIDS=()   # every long-running process we start, in start order
WRK_PID="" # the wrk run in progress, if any

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	# Stop in reverse start order: load generator, gateway, proxies, upstream.
	[[ -z $WRK_PID ]] || stop_pid "$WRK_PID"
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]}"
	done
	wait 2>/dev/null || true
	if [[ $rc -ne 0 && -n ${KEEP_WORK_ON_FAILURE:-} ]]; then
		log "work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fail early if a port is taken (e.g. a leftover run), rather than benchmarking it.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$UPSTREAM_PORT" "$NGINX_PORT")
[[ $SKIP_GATEWAY == 1 ]] || ports+=("$GATEWAY_PORT" "$STATUS_PORT")
for p in "${ports[@]}"; do
	port_in_use "$p" && die "127.0.0.1:$p is already in use; stop whatever listens there or set the *_PORT knobs"
done

# ---------------------------------------------------------------- build
if [[ $SKIP_GATEWAY != 1 ]]; then
	if [[ -n ${GATEWAY_BIN:-} ]]; then
		[[ -x $GATEWAY_BIN ]] || die "GATEWAY_BIN=$GATEWAY_BIN is not an executable"
	else
		log "building gateway (go build -o bin/gatehouse ./cmd/gatehouse)"
		(cd "$REPO_ROOT" && go build -o bin/gatehouse ./cmd/gatehouse) ||
			die "go build ./cmd/gatehouse failed"
		GATEWAY_BIN=$REPO_ROOT/bin/gatehouse
	fi
fi

# ---------------------------------------------------------------- nginx instances
# Each nginx gets its own prefix dir with config, pid file, error log and temp
# paths, so it runs as the current user without touching /var/lib/nginx or
# /var/log/nginx. Run with "daemon off" in the background so $! is the master.
NGINX_USER_LINE=""
if [[ $(id -u) -eq 0 ]]; then
	# As root, workers would otherwise drop to "nobody" and could not use the
	# 0700 work dir; keep them as the invoking user.
	NGINX_USER_LINE="user $(id -un) $(id -gn);"
fi

nginx_common() { # nginx_common DIR WORKERS: top-level and http-level boilerplate
	local dir=$1 workers=$2
	cat <<EOF
daemon off;
$NGINX_USER_LINE
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    # Do not recycle client connections every 1000 requests (nginx's default):
    # wrk keeps its connections for the whole run, and so does a Go server.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}

start_nginx() { # start_nginx NAME: start nginx from $WORK/NAME/nginx.conf
	local name=$1 dir=$WORK/$1
	nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/test.log" 2>&1 ||
		die "nginx config for $name is invalid: $(cat "$dir/test.log")"
	nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
	PIDS+=($!)
	eval "${name}_PID=$!"
}

# Upstream: one worker answers "ok" — the same upstream behind both proxies.
mkdir -p "$WORK/upstream"
{
	nginx_common "$WORK/upstream" 1
	cat <<EOF
    server {
        listen 127.0.0.1:$UPSTREAM_PORT reuseport backlog=4096;
        location / {
            return 200 "ok\n";
        }
    }
}
EOF
} >"$WORK/upstream/nginx.conf"

# (a) nginx reverse proxy with a keepalive pool to the upstream.
mkdir -p "$WORK/nginxproxy"
{
	nginx_common "$WORK/nginxproxy" auto
	cat <<EOF
    upstream bench {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 75s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$WORK/nginxproxy/nginx.conf"

log "work dir: $WORK"
start_nginx upstream
start_nginx nginxproxy

# ---------------------------------------------------------------- gateway
if [[ $SKIP_GATEWAY != 1 ]]; then
	cat >"$WORK/gateway.yaml" <<EOF
upstreams:
  - name: bench
    targets:
      - address: 127.0.0.1:$UPSTREAM_PORT
services:
  - name: bench
    upstream: bench
    routes:
      - name: bench
        paths: [/*]
EOF
	mkdir -p "$WORK/gw"
	# --tls-listen "": the HTTPS listener (default :8443 on all interfaces) is not
	# measured; leaving it on could collide with another gateway on this machine.
	"$GATEWAY_BIN" gateway --config "$WORK/gateway.yaml" --data-dir "$WORK/gw" \
		--listen "127.0.0.1:$GATEWAY_PORT" --status-listen "127.0.0.1:$STATUS_PORT" \
		--tls-listen "" >"$WORK/gateway.log" 2>&1 &
	GATEWAY_PID=$!
	PIDS+=("$GATEWAY_PID")
	if [[ $POLICY_RUN == 1 ]]; then
		cat >"$WORK/gateway-policies.yaml" <<EOF
upstreams:
  - name: bench
    targets:
      - address: 127.0.0.1:$UPSTREAM_PORT
consumers:
  - name: bench
    credentials:
      - type: key
        key: $BENCH_KEY
global_policies:
  - name: request-id
services:
  - name: bench
    upstream: bench
    policies:
      - name: key-auth
        config: {header: X-API-Key}
      - name: rate-limit
        config: {limits: [{requests: 1000000000, window: second}], key: consumer}
    routes:
      - name: bench
        paths: [/*]
EOF
		mkdir -p "$WORK/gwpol"
		"$GATEWAY_BIN" gateway --config "$WORK/gateway-policies.yaml" --data-dir "$WORK/gwpol" \
			--listen "127.0.0.1:$POLICY_PORT" --status-listen "127.0.0.1:$POLICY_STATUS_PORT" \
			--tls-listen "" >"$WORK/gateway-policies.log" 2>&1 &
		POLICY_PID=$!
		PIDS+=("$POLICY_PID")
	fi
fi

# ---------------------------------------------------------------- readiness
# wait_until SECONDS PID LOGFILE WHAT CMD...: poll CMD every 0.1 s; fail if PID dies.
wait_until() {
	local secs=$1 pid=$2 logf=$3 what=$4 deadline
	shift 4
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "--- $logf" >&2
			tail -n 30 "$logf" >&2 || true
			die "$what exited before becoming ready"
		fi
		sleep 0.1
	done
	echo "--- $logf" >&2
	tail -n 30 "$logf" >&2 || true
	die "$what not ready after ${secs}s"
}
ok_through() { # ok_through PORT: one request returns 200 with body "ok"
	[[ $(curl -fsS --max-time 2 -H "X-API-Key: $BENCH_KEY" "http://127.0.0.1:$1/bench-check") == ok ]]
}

wait_until 10 "$upstream_PID" "$WORK/upstream/error.log" "upstream nginx" ok_through "$UPSTREAM_PORT"
wait_until 10 "$nginxproxy_PID" "$WORK/nginxproxy/error.log" "nginx proxy" ok_through "$NGINX_PORT"
if [[ $SKIP_GATEWAY != 1 ]]; then
	wait_until 20 "$GATEWAY_PID" "$WORK/gateway.log" "gateway (/readyz on 127.0.0.1:$STATUS_PORT)" \
		curl -fsS --max-time 2 "http://127.0.0.1:$STATUS_PORT/readyz"
	wait_until 10 "$GATEWAY_PID" "$WORK/gateway.log" "gateway (request through 127.0.0.1:$GATEWAY_PORT)" \
		ok_through "$GATEWAY_PORT"
	if [[ $POLICY_RUN == 1 ]]; then
		wait_until 20 "$POLICY_PID" "$WORK/gateway-policies.log" "policy gateway" \
			curl -fsS --max-time 2 "http://127.0.0.1:$POLICY_STATUS_PORT/readyz"
		wait_until 10 "$POLICY_PID" "$WORK/gateway-policies.log" "policy gateway (request)" \
			ok_through "$POLICY_PORT"
		# Without the key the route must refuse: the policies are really on.
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$POLICY_PORT/")
		[[ $code == 401 ]] || die "policy gateway answered $code without a key, want 401"
	fi
fi

# ---------------------------------------------------------------- load
# run_wrk OUTFILE PORT DURATION: wrk in the background so a signal can stop it.
run_wrk() {
	local out=$1 port=$2 dur=$3
	wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency -H "X-API-Key: $BENCH_KEY" "http://127.0.0.1:$port/" >"$out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || { WRK_PID=""; cat "$out" >&2; die "wrk against 127.0.0.1:$port failed"; }
	WRK_PID=""
}

# parse_wrk FILE -> "rps p50_ms p99_ms errors"
parse_wrk() {
	awk '
	function ms(v,   n, u) {
		n = v; sub(/[a-z]+$/, "", n)
		u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000
		if (u == "ms") return n + 0
		if (u == "s")  return n * 1000
		if (u == "m")  return n * 60000
		if (u == "h")  return n * 3600000
		return -1
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	$1 == "Requests/sec:" { rps = $2 }
	/Non-2xx or 3xx responses:/ { errs += $NF }
	/Socket errors:/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
	END {
		if (rps == "" || p50 == "" || p99 == "") exit 1
		printf "%.2f %.3f %.3f %d\n", rps, p50, p99, errs
	}' "$1" || { cat "$1" >&2; die "could not parse wrk output $1"; }
}

targets=(nginx)
[[ $SKIP_GATEWAY == 1 ]] || targets+=(gateway)
[[ $SKIP_GATEWAY == 1 || $POLICY_RUN != 1 ]] || targets+=(policies)
declare -A PORT=([nginx]=$NGINX_PORT [gateway]=$GATEWAY_PORT [policies]=$POLICY_PORT)
declare -A BEST_RPS BEST_P50 BEST_P99 BEST_ERR

echo
echo "Gatehouse proxy benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  repo:    $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
echo "  machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "  tools:   $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n1 | awk '{print $1" "$2}')"
echo "  load:    wrk -t$THREADS -c$CONNS -d$DURATION --latency, ${WARMUP} warm-up before each run"
echo "  order:   ${ROUNDS} round(s) of (${targets[*]}); best run per proxy (highest requests/s) is kept"
echo
printf '  %-8s %-8s %12s %10s %10s %8s\n' run proxy req/s p50_ms p99_ms errors
for ((round = 1; round <= ROUNDS; round++)); do
	for t in "${targets[@]}"; do
		run_wrk "$WORK/warmup.txt" "${PORT[$t]}" "$WARMUP"
		out=$WORK/wrk-$t-$round.txt
		run_wrk "$out" "${PORT[$t]}" "$DURATION"
		res=$(parse_wrk "$out")
		read -r rps p50 p99 errs <<<"$res"
		printf '  %-8s %-8s %12.0f %10.3f %10.3f %8d\n' "$round" "$t" "$rps" "$p50" "$p99" "$errs"
		if [[ -z ${BEST_RPS[$t]:-} ]] || awk -v a="$rps" -v b="${BEST_RPS[$t]}" 'BEGIN { exit !(a > b) }'; then
			BEST_RPS[$t]=$rps BEST_P50[$t]=$p50 BEST_P99[$t]=$p99 BEST_ERR[$t]=$errs
		fi
	done
done

# ---------------------------------------------------------------- memory
rss_mib() { # rss_mib PID...: summed VmRSS in MiB
	local kb=0 pid v
	for pid in "$@"; do
		v=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
		kb=$((kb + ${v:-0}))
	done
	awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }'
}
nginx_pids=("$nginxproxy_PID")
while read -r p; do [[ -n $p ]] && nginx_pids+=("$p"); done < <(pgrep -P "$nginxproxy_PID" || true)
NGINX_RSS=$(rss_mib "${nginx_pids[@]}")
[[ $SKIP_GATEWAY == 1 ]] || GATEWAY_RSS=$(rss_mib "$GATEWAY_PID")

# ---------------------------------------------------------------- report
echo
echo "Result (best of $ROUNDS run(s) each):"
printf '  %-8s %12s %10s %10s %8s\n' proxy req/s p50_ms p99_ms errors
for t in "${targets[@]}"; do
	printf '  %-8s %12.0f %10.3f %10.3f %8d\n' "$t" "${BEST_RPS[$t]}" "${BEST_P50[$t]}" "${BEST_P99[$t]}" "${BEST_ERR[$t]}"
done
echo
if [[ $SKIP_GATEWAY != 1 ]]; then
	awk -v grps="${BEST_RPS[gateway]}" -v nrps="${BEST_RPS[nginx]}" \
		-v gp99="${BEST_P99[gateway]}" -v np99="${BEST_P99[nginx]}" \
		-v trps="$TARGET_RPS_RATIO" -v tp99="$TARGET_P99_RATIO" 'BEGIN {
		r = grps / nrps; l = (np99 > 0) ? gp99 / np99 : 0
		printf "  gateway/nginx throughput  %6.2fx   (target >= %.1fx: %s)\n", r, trps, (r >= trps) ? "met" : "NOT met"
		printf "  gateway/nginx p99         %6.2fx   (target <= %.1fx: %s)\n", l, tp99, (l <= tp99) ? "met" : "NOT met"
	}'
	if [[ $POLICY_RUN == 1 ]]; then
		awk -v prps="${BEST_RPS[policies]}" -v grps="${BEST_RPS[gateway]}" -v nrps="${BEST_RPS[nginx]}" 'BEGIN {
		a = prps / grps; n = prps / nrps
		printf "  policies/gateway          %6.2fx   (target >= 0.9x: %s)\n", a, (a >= 0.9) ? "met" : "NOT met"
		printf "  policies/nginx            %6.2fx   (target >= 0.9x: %s)\n", n, (n >= 0.9) ? "met" : "NOT met"
	}'
	fi
	echo "  gateway RSS after load    ${GATEWAY_RSS} MiB   (nginx proxy, master+workers: ${NGINX_RSS} MiB)"
else
	echo "  gateway skipped (SKIP_GATEWAY=1); nginx proxy RSS (master+workers): ${NGINX_RSS} MiB"
fi
echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (on $(nproc) CPUs; higher means other work shared the machine)"
for t in "${targets[@]}"; do
	if [[ ${BEST_ERR[$t]} != 0 ]]; then
		echo "  WARNING: $t had ${BEST_ERR[$t]} non-2xx responses or socket errors; its numbers are suspect"
	fi
done
