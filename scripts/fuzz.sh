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

# Go before 1.27 can fail a duration-bounded run that found nothing: when
# -fuzztime ends while a worker is mid-input, its cancelled context is
# reported as the target's failure, "context deadline exceeded", and no
# input is written (go.dev/issue/75804). That exact outcome, and only it,
# is run once more; any failing input, panic or other error fails at once.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fuzz_one() {
	# Minimizing a new input is bounded too, or one large input could
	# hold a short run for a minute.
	"$GO" test "$1" -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s 2>&1 | tee "$log"
}

pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
n=0
for pkg in $pkgs; do
	for target in $("$GO" test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "fuzz: $pkg $target for $FUZZTIME"
		if ! fuzz_one "$pkg" "$target"; then
			if ! grep -q 'Failing input written' "$log" &&
				grep -A1 -- "^--- FAIL: $target " "$log" | grep -qx '    context deadline exceeded'; then
				echo "fuzz: $target: the fuzzing coordinator's stop race (go.dev/issue/75804), no input failed; once more"
				fuzz_one "$pkg" "$target" || exit 1
			else
				exit 1
			fi
		fi
		n=$((n + 1))
	done
done
if [ "$n" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $n targets passed"
