#!/usr/bin/env bash
# Host tuning for Tessera on a c8g (Graviton) instance; fine on other Linux
# hosts too. Idempotent: every step compares before it changes anything, and
# the script says what it changed. Run as root:
#
#   sudo deploy/tune-host.sh             # apply
#   deploy/tune-host.sh --dry-run        # only say what it would change
#   sudo deploy/tune-host.sh --steps sysctl,thp   # only some steps
#
# Steps:
#   1. stop and disable irqbalance (it would move the NIC interrupts back);
#   2. apply the affinity planner's IRQ plan (tessera-server --print-plan
#      --apply-irq-affinity, with $TESSERA_PLANNER_ARGS);
#   3. sysctls for connection backlogs, persisted in /etc/sysctl.d;
#   4. transparent huge pages: advice only.
#
# Environment: TESSERA_BIN (default /usr/local/bin/tessera-server),
# TESSERA_PLANNER_ARGS (default --irq-cores=auto; use the same flags as the
# server), SYSCTL_FILE (default /etc/sysctl.d/60-tessera.conf), SYSCTL_ROOT
# (default /proc/sys; deploy/check.sh points it at a scratch copy).
set -euo pipefail

DRY_RUN=0
STEPS=irqbalance,irq,sysctl,thp
while [ $# -gt 0 ]; do
    arg=$1
    shift
    case $arg in
        -n | --dry-run) DRY_RUN=1 ;;
        --steps)
            [ $# -gt 0 ] || { echo "tune-host: --steps needs a list" >&2; exit 2; }
            STEPS=$1
            shift
            ;;
        --steps=*) STEPS=${arg#--steps=} ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "tune-host: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

TESSERA_BIN=${TESSERA_BIN:-/usr/local/bin/tessera-server}
TESSERA_PLANNER_ARGS=${TESSERA_PLANNER_ARGS:---irq-cores=auto}
SYSCTL_FILE=${SYSCTL_FILE:-/etc/sysctl.d/60-tessera.conf}
SYSCTL_ROOT=${SYSCTL_ROOT:-/proc/sys}
for step in ${STEPS//,/ }; do
    case $step in
        irqbalance | irq | sysctl | thp) ;;
        *)
            echo "tune-host: unknown step: $step (irqbalance, irq, sysctl, thp)" >&2
            exit 2
            ;;
    esac
done
# step NAME: is NAME among the steps to run?
step() { [[ ",$STEPS," == *",$1,"* ]]; }

# name=value pairs. somaxconn and the SYN backlog bound the accept queue the
# server's listen() gets; netdev_max_backlog is the per-CPU queue of received
# packets waiting for the IRQ cores' softirq work.
SYSCTLS=(
    net.core.somaxconn=65535
    net.ipv4.tcp_max_syn_backlog=65535
    net.core.netdev_max_backlog=65536
)

changed=0
# write_file PATH TEXT: writes TEXT and a newline to PATH.
write_file() {
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" >"$1"
}
say() { printf 'tune-host: %s\n' "$*"; }
# change DESCRIPTION COMMAND...: runs COMMAND (or, with --dry-run, says it would).
change() {
    local what=$1
    shift
    if [ "$DRY_RUN" = 1 ]; then
        say "would $what"
    else
        "$@"
        say "$what"
    fi
    changed=$((changed + 1))
}

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "tune-host: must run as root (or pass --dry-run)" >&2
    exit 1
fi

# 1. irqbalance
if ! step irqbalance; then
    :
elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet irqbalance 2>/dev/null; then
        change "stop irqbalance" systemctl stop irqbalance
    else
        say "irqbalance not running: unchanged"
    fi
    if systemctl is-enabled --quiet irqbalance 2>/dev/null; then
        change "disable irqbalance at boot" systemctl disable --quiet irqbalance
    fi
elif pgrep -x irqbalance >/dev/null 2>&1; then
    say "WARNING: irqbalance is running but systemd is not managing it; stop it yourself"
else
    say "irqbalance not running: unchanged"
fi

# 2. the IRQ plan
if ! step irq; then
    :
elif [ -x "$TESSERA_BIN" ]; then
    # Word splitting of the flags is intended.
    # shellcheck disable=SC2086
    if [ "$DRY_RUN" = 1 ]; then
        say "IRQ plan ($TESSERA_BIN --print-plan $TESSERA_PLANNER_ARGS):"
        "$TESSERA_BIN" --print-plan $TESSERA_PLANNER_ARGS | sed 's/^/    /'
    else
        say "applying the IRQ plan:"
        "$TESSERA_BIN" --print-plan --apply-irq-affinity $TESSERA_PLANNER_ARGS | sed 's/^/    /'
    fi
else
    say "WARNING: $TESSERA_BIN not found: IRQ plan not applied (set TESSERA_BIN)"
fi

# 3. sysctls: live values and the persistent file.
want_file="# Written by Tessera's deploy/tune-host.sh."
step sysctl || SYSCTLS=()
for kv in "${SYSCTLS[@]}"; do
    key=${kv%%=*}
    want=${kv#*=}
    want_file+=$'\n'"$kv"
    proc=$SYSCTL_ROOT/${key//.//}
    if [ ! -e "$proc" ]; then
        say "WARNING: $key not available here: skipped"
        continue
    fi
    have=$(cat "$proc")
    if [ "$have" = "$want" ]; then
        say "$key = $want: unchanged"
    else
        change "set $key from $have to $want" write_file "$proc" "$want"
    fi
done
if ! step sysctl; then
    :
elif [ "$(cat "$SYSCTL_FILE" 2>/dev/null || true)" = "$want_file" ]; then
    say "$SYSCTL_FILE: unchanged"
else
    change "write $SYSCTL_FILE (applied at every boot)" write_file "$SYSCTL_FILE" "$want_file"
fi

# 4. transparent huge pages: advice only, nothing changed.
thp=/sys/kernel/mm/transparent_hugepage/enabled
if step thp && [ -r "$thp" ]; then
    mode=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$thp")
    if [ "$mode" = always ]; then
        say "ADVICE: transparent huge pages are 'always'. Like Redis/Valkey, Tessera sees"
        say "        latency spikes from THP compaction and copy-on-write; prefer madvise:"
        say "        echo madvise > $thp   (persist: transparent_hugepage=madvise on the kernel command line)"
    else
        say "transparent huge pages: $mode: fine"
    fi
fi

if [ "$DRY_RUN" = 1 ]; then
    say "dry run: $changed change(s) would be made"
else
    say "done: $changed change(s) made"
fi
