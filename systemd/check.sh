#!/usr/bin/env bash
# Checks systemd/parkgate.service the way CI does (issue 9):
#  1. `systemd-analyze security --offline=true` scores it 2.0 or lower;
#  2. `systemd-analyze verify` has nothing to say about it.
# Needs systemd-analyze (Debian: the `systemd` package); installs nothing.
#
# verify also checks that ExecStart='s program exists, and a CI machine has
# no /usr/local/bin/parkgate. Rather than install one there (or edit the
# unit under test), verify runs with --root= on a throwaway tree: the unit
# in etc/systemd/system, the distribution's units (sysinit.target and
# friends, which verify loads as dependencies) copied from the host, and
# the binary just built at usr/local/bin/parkgate. Give its path in
# PARKGATE_BIN; by default target/debug/parkgate, as `cargo build` or
# tests/run.sh leave it (or $CARGO_TARGET_DIR/debug/parkgate).
set -euo pipefail
cd "$(dirname "$0")/.."

unit=systemd/parkgate.service
max=2.0
bin=${PARKGATE_BIN:-${CARGO_TARGET_DIR:-target}/debug/parkgate}

command -v systemd-analyze >/dev/null || {
    echo "systemd/check.sh: systemd-analyze not found (apt-get install systemd)" >&2
    exit 2
}
[ -x "$bin" ] || {
    echo "systemd/check.sh: no parkgate binary at $bin (cargo build, or set PARKGATE_BIN)" >&2
    exit 2
}

failed=0

# 1. The exposure score. --threshold counts in tenths: 20 is 2.0.
score_out=$(systemd-analyze security --offline=true --no-pager \
    --threshold="${max/./}" "$unit" 2>&1) || failed=1
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$score_out")
echo "security: exposure ${score:-?} (at most $max)"
if [ "$failed" = 1 ] || [ -z "$score" ]; then
    echo "$score_out" | grep -E '✗|Overall' >&2
    failed=1
fi

# 2. verify, on a throwaway root.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/usr/local/bin"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$unit" "$root/etc/systemd/system/"
# A hard link where possible: a debug build is large.
ln "$bin" "$root/usr/local/bin/parkgate" 2>/dev/null || cp "$bin" "$root/usr/local/bin/parkgate"
verify_out=$(systemd-analyze verify --root="$root" --man=no \
    "/etc/systemd/system/$(basename "$unit")" 2>&1) || failed=1
if [ -n "$verify_out" ]; then
    echo "$verify_out" >&2
    failed=1
fi
echo "verify: ${verify_out:-clean}"

exit "$failed"
