#!/bin/sh
# bench/run.sh — gatehouse against direct access, Caddy and nginx, in one
# run, on loopback only. Prints the tables and the performance targets and
# writes them to bench/results/latest.md.
#
#   bench/run.sh            the full run (both CPU modes, 3 rounds; ~21 min on 2 cores)
#   bench/run.sh -quick     every scenario with tiny durations: a smoke test
#   bench/run.sh -h         every flag (-rounds, -modes, -scenarios, -caddy, -keep, …)
#
# It installs nothing system-wide; it says what is missing and how to
# install it:
#   apt-get install -y nginx wrk
#   go install github.com/tsenart/vegeta/v12@v12.13.0
# Caddy v2.11.9 it builds once into ~/.cache/gatebench (see bench/README.md).
set -eu
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
	echo "bench/run.sh: go not found; the bench builds gatehouse with the repository's Go 1.26 toolchain" >&2
	exit 1
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	# gatebench stops every process it started, by PID, on SIGTERM.
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

go build -o "$tmp/gatebench" ./bench/cmd/gatebench
"$tmp/gatebench" run "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
