#!/usr/bin/env bash
# Checks the deploy kit; run from anywhere:  bash deploy/check.sh
#   1. shellcheck on every shell script under deploy/ (required: Debian's
#      `shellcheck` package);
#   2. systemd-analyze verify on the unit file, against a stub binary (skipped,
#      saying so, where systemd-analyze is absent);
#   3. tune-host.sh's sysctl step twice against a scratch /proc/sys: the
#      second run must change nothing (as root; a dry run otherwise);
#   4. capture-snapshot.sh into a scratch dir.
# Exits non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
    echo "deploy/check: FAIL: $*" >&2
    exit 1
}

# 1. shellcheck
command -v shellcheck >/dev/null 2>&1 ||
    fail "shellcheck not installed (apt-get install -y shellcheck)"
mapfile -t scripts < <(find "$here" -name '*.sh' -type f | sort)
shellcheck --version | sed -n 's/^version: /deploy\/check: shellcheck /p'
shellcheck --external-sources "${scripts[@]}" || fail "shellcheck"
echo "deploy/check: shellcheck ok (${#scripts[@]} scripts)"

# 2. the unit file. verify wants ExecStart binaries to exist, so check a copy
# that points at a stub; it exits 0 on most problems and only prints them, so
# any line naming the unit is a failure.
if command -v systemd-analyze >/dev/null 2>&1; then
    printf '#!/bin/sh\nexit 0\n' >"$scratch/tessera-server"
    chmod +x "$scratch/tessera-server"
    sed "s#/usr/local/bin/tessera-server#$scratch/tessera-server#g" \
        "$here/systemd/tessera.service" >"$scratch/tessera.service"
    out=$(systemd-analyze verify "$scratch/tessera.service" 2>&1) || fail "systemd-analyze verify: $out"
    if grep -F "tessera" <<<"$out"; then
        fail "systemd-analyze verify reported problems in tessera.service"
    fi
    echo "deploy/check: systemd-analyze verify ok"
else
    echo "deploy/check: SKIPPED systemd-analyze verify: systemd-analyze not installed"
fi

# 3. tune-host.sh is idempotent (sysctl step, on a scratch copy).
sysroot=$scratch/proc-sys
mkdir -p "$sysroot/net/core" "$sysroot/net/ipv4"
echo 4096 >"$sysroot/net/core/somaxconn"
echo 128 >"$sysroot/net/ipv4/tcp_max_syn_backlog"
echo 1000 >"$sysroot/net/core/netdev_max_backlog"
tune() {
    SYSCTL_ROOT=$sysroot SYSCTL_FILE=$scratch/sysctl.d/60-tessera.conf \
        bash "$here/tune-host.sh" --steps sysctl "$@"
}
if [ "$(id -u)" = 0 ]; then
    first=$(tune) || fail "tune-host.sh: $first"
    grep -q "done: 4 change(s) made" <<<"$first" || fail "tune-host.sh first run: $first"
    [ "$(cat "$sysroot/net/core/somaxconn")" = 65535 ] || fail "tune-host.sh did not set somaxconn"
    second=$(tune) || fail "tune-host.sh: $second"
    grep -q "done: 0 change(s) made" <<<"$second" || fail "tune-host.sh is not idempotent: $second"
    echo "deploy/check: tune-host.sh idempotent"
else
    out=$(tune --dry-run) || fail "tune-host.sh --dry-run: $out"
    grep -q "4 change(s) would be made" <<<"$out" || fail "tune-host.sh --dry-run: $out"
    [ "$(cat "$sysroot/net/core/somaxconn")" = 4096 ] || fail "tune-host.sh --dry-run wrote"
    echo "deploy/check: tune-host.sh --dry-run ok (not root: idempotency not checked)"
fi

# 4. capture-snapshot.sh captures at least the CPU list.
bash "$here/capture-snapshot.sh" "$scratch/snap" >/dev/null || fail "capture-snapshot.sh"
[ -s "$scratch/snap/sys/devices/system/cpu/online" ] || fail "capture-snapshot.sh: no cpu/online"
[ -s "$scratch/snap/proc/interrupts" ] || fail "capture-snapshot.sh: no interrupts"
echo "deploy/check: capture-snapshot.sh ok"
echo "deploy/check: all ok"
