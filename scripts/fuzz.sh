#!/usr/bin/env bash
# Runs every native Go fuzz target of the module for a bounded time each
# (FUZZTIME, default 10s; `make fuzz FUZZTIME=30s` for a longer run).
# A crasher is written by `go test` under the package's testdata/fuzz/ and
# fails the run: commit it, it becomes a regression test of `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	for target in $targets; do
		echo "fuzz: $pkg $target ($fuzztime)"
		ok=
		for try in 1 2; do
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/initos-fuzz.$$ 2>&1; then
				ok=1
				break
			fi
			# Go's fuzzing coordinator can miss its own deadline on a loaded
			# machine ("context deadline exceeded", no failing input): that is
			# not a finding, so run the target once more. A crasher is never
			# retried.
			if grep -q 'Failing input written' /tmp/initos-fuzz.$$ || ! grep -q 'context deadline exceeded' /tmp/initos-fuzz.$$; then
				break
			fi
			echo "fuzz: $pkg $target: the fuzzing engine missed its deadline (no failing input); again"
		done
		[ -n "$ok" ] || {
			cat /tmp/initos-fuzz.$$
			rm -f /tmp/initos-fuzz.$$
			echo "fuzz: $pkg $target FAILED" >&2
			exit 1
		}
		n=$((n + 1))
	done
done
rm -f /tmp/initos-fuzz.$$
echo "fuzz: $n targets ran $fuzztime each, no failure"
