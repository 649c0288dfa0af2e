#!/usr/bin/env bash
# make run-standalone: a standalone gateway on examples/gateway.yaml in front of the
# demo upstream, until Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/gatehouse
data=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$data"
}
trap cleanup EXIT INT TERM

"$bin" demo-upstream --listen 127.0.0.1:9001 --name orders &
pids+=($!)
"$bin" gateway --config "$root/examples/gateway.yaml" --data-dir "$data/gw" \
	--listen 127.0.0.1:8080 --tls-listen "" --status-listen 127.0.0.1:8085 &
pids+=($!)

for _ in $(seq 50); do
	curl -fsS 127.0.0.1:8085/readyz >/dev/null 2>&1 && break
	sleep 0.2
done
cat <<TXT

Gatehouse gateway (standalone) is serving examples/gateway.yaml, in front of
the demo upstream on 127.0.0.1:9001 (gatehouse demo-upstream):
  curl 127.0.0.1:8080/orders          # list-orders -> demo upstream
  curl 127.0.0.1:8080/orders/42       # get-order ({id} parameter)
  curl 127.0.0.1:8080/api/v1/things   # prefix route, /api stripped
  curl 127.0.0.1:8080/nothing         # 404 JSON error
  curl 127.0.0.1:8085/status          # what the gateway serves
  curl 127.0.0.1:8085/metrics         # Prometheus metrics
Edit examples/gateway.yaml and the gateway reloads it; Ctrl-C stops everything.

TXT
wait -n "${pids[@]}"
