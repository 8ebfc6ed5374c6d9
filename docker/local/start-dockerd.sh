#!/usr/bin/env bash
# Makes sure a Docker daemon answers: installs Debian's docker.io and debootstrap when they are
# missing and starts `dockerd` at the lowest CPU priority when none runs. Exits non-zero, saying
# why, where no daemon can be had (no apt-get, not root, or dockerd will not start).
#
# The daemon gets no default bridge: the deployment test creates the only network its
# containers use (compose's, whose traffic the daemon's iptables rules let through; with
# --iptables=false a host whose FORWARD policy is DROP silently drops it), and builds use the
# host's network (for the 127.0.0.1 wheelhouse server and Debian's mirror).
set -euo pipefail

answers() { docker info > /dev/null 2>&1; }

answers && exit 0
if ! command -v dockerd > /dev/null 2>&1 || ! command -v debootstrap > /dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null 2>&1; then
        echo "start-dockerd.sh: no dockerd/debootstrap and no way to install them (root and apt-get)" >&2
        exit 1
    fi
    apt-get update -qq && apt-get install -y -qq docker.io debootstrap > /dev/null
fi
if [ "$(id -u)" != 0 ]; then
    echo "start-dockerd.sh: starting dockerd needs root" >&2
    exit 1
fi
log="${TMPDIR:-/tmp}/rsearch-dockerd.log"
nohup nice -n 19 dockerd --bridge=none > "$log" 2>&1 &
for _ in $(seq 60); do
    answers && exit 0
    sleep 1
done
echo "start-dockerd.sh: dockerd did not answer within 60 s; its log:" >&2
tail -20 "$log" >&2
exit 1
