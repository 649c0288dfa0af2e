#!/usr/bin/env bash
# make fuzz / make fuzz-short: every fuzz target in the module, one after
# the other, for FUZZTIME each (go test -fuzz takes one target of one
# package at a time). The targets are found, not listed: the packages
# whose tests mention "func Fuzz", then the exact names from
# go test -list, so a new target is run without anyone adding it here.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
cd "$(dirname "$0")/.."

pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
n=0
for pkg in $pkgs; do
	for target in $("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "fuzz: $pkg $target for $FUZZTIME"
		# Minimizing a new input is bounded too, or one large input
		# could hold a short run for a minute.
		"$GO" test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s
		n=$((n + 1))
	done
done
if [ "$n" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $n targets passed"
