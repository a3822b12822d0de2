#!/usr/bin/env bash
# Makes a Docker seccomp profile that is Docker's default plus the three
# io_uring syscalls Tessera's executors (glommio) need.
#
# Why: since Docker 25.0 (moby PR #46762; containerd 2.0's RuntimeDefault did
# the same) the default profile no longer allows io_uring_setup,
# io_uring_enter and io_uring_register, so io_uring fails with EPERM inside a
# container. Allowing just those three keeps every other restriction of the
# default profile; --security-opt seccomp=unconfined would drop them all.
#
# Usage:
#   deploy/docker/seccomp-io_uring.sh DEFAULT.json > seccomp-io_uring.json
# where DEFAULT.json is profiles/seccomp/default.json from the moby source of
# your Docker version (https://github.com/moby/moby, tag v<version>). Needs jq.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: $0 DEFAULT.json > seccomp-io_uring.json" >&2
    exit 2
fi
command -v jq >/dev/null 2>&1 || {
    echo "$0: needs jq" >&2
    exit 1
}
jq '.syscalls += [{
        "names": ["io_uring_setup", "io_uring_enter", "io_uring_register"],
        "action": "SCMP_ACT_ALLOW",
        "comment": "Tessera: glommio executors run on io_uring"
    }]' "$1"
