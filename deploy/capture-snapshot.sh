#!/usr/bin/env bash
# Captures the /sys and /proc files Tessera's affinity planner reads, so that
# a machine can be planned elsewhere:
#
#   deploy/capture-snapshot.sh /tmp/snap-host1          # on the machine
#   tessera-server --print-plan \
#       --sysfs-root /tmp/snap-host1/sys --procfs-root /tmp/snap-host1/proc
#
# Run it the way the server will run (same container, same cpuset), since the
# snapshot records this shell's CPU mask and cgroup. Nothing outside DIR is
# written. Needs only coreutils.
set -euo pipefail

usage() {
    echo "usage: $0 DIR   (DIR must not exist or be empty)" >&2
    exit 2
}
[ $# -eq 1 ] || usage
out=$1
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "$0: $out exists and is not empty" >&2
    exit 1
fi
SYS=${SYSFS:-/sys}
PROC=${PROCFS:-/proc}

# copy FILE: copies $SYS/... or $PROC/... to the same relative place in $out.
copy() {
    local src=$1 rel
    [ -r "$src" ] || return 0
    case $src in
        "$SYS"/*) rel=sys/${src#"$SYS"/} ;;
        "$PROC"/*) rel=proc/${src#"$PROC"/} ;;
        *) return 0 ;;
    esac
    mkdir -p "$out/$(dirname "$rel")"
    cat "$src" >"$out/$rel" 2>/dev/null || rm -f "$out/$rel"
}

# relpath FROM_DIR TO: a relative path from FROM_DIR to TO (both absolute).
relpath() {
    local from=$1 to=$2 up=""
    while [ "${to#"$from"/}" = "$to" ]; do
        from=$(dirname "$from")
        up="../$up"
    done
    echo "$up${to#"$from"/}"
}

cpu=$SYS/devices/system/cpu
copy "$cpu/online"
online=$(cat "$cpu/online")
for range in ${online//,/ }; do
    lo=${range%-*}
    hi=${range#*-}
    for ((n = lo; n <= hi; n++)); do
        for f in core_id physical_package_id thread_siblings_list core_cpus_list; do
            copy "$cpu/cpu$n/topology/$f"
        done
        copy "$cpu/cpu$n/cache/index3/shared_cpu_list"
    done
done
for node in "$SYS"/devices/system/node/node[0-9]*; do
    [ -e "$node" ] && copy "$node/cpulist"
done

# NICs: the device link, MSI vectors, NUMA node; for virtio also the PCI
# function above the virtio child device.
for ifdir in "$SYS"/class/net/*; do
    [ -e "$ifdir/device" ] || continue
    ifname=$(basename "$ifdir")
    dev=$(readlink -f "$ifdir/device")
    mkdir -p "$out/sys/class/net/$ifname"
    ln -s "$(relpath "$SYS/class/net/$ifname" "$dev")" "$out/sys/class/net/$ifname/device"
    for d in "$dev" "$(dirname "$dev")"; do
        rel=sys/${d#"$SYS"/}
        mkdir -p "$out/$rel"
        copy "$d/numa_node"
        if [ -d "$d/msi_irqs" ]; then
            mkdir -p "$out/$rel/msi_irqs"
            for v in "$d"/msi_irqs/*; do
                [ -e "$v" ] && copy "$v"
            done
        fi
        if [ -L "$d/driver" ] && [ ! -e "$out/$rel/driver" ]; then
            ln -s "$(readlink "$d/driver")" "$out/$rel/driver"
        fi
    done
done

copy "$PROC/interrupts"
for irq in "$PROC"/irq/[0-9]*; do
    [ -e "$irq" ] && copy "$irq/smp_affinity_list"
done
# This shell's mask and cgroup stand for the server's.
mkdir -p "$out/proc/self"
grep '^Cpus_allowed' "$PROC/self/status" >"$out/proc/self/status" || true
copy "$PROC/self/cgroup"
while IFS=: read -r hier ctrls path; do
    if [ "$hier" = 0 ] && [ -z "$ctrls" ]; then
        for base in "$SYS/fs/cgroup" "$SYS/fs/cgroup/unified"; do
            copy "$base$path/cpuset.cpus.effective"
        done
    elif [[ ",$ctrls," == *,cpuset,* ]]; then
        copy "$SYS/fs/cgroup/cpuset$path/cpuset.effective_cpus"
        copy "$SYS/fs/cgroup/cpuset$path/cpuset.cpus"
    fi
done <"$PROC/self/cgroup"

echo "captured $(find "$out" -type f | wc -l) files into $out"
