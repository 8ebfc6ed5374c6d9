#!/usr/bin/env bash
# Builds rsearch's images on a machine that reaches no image registry (Debian's mirror and
# PyPI only), on local stand-ins for the registry bases, with the same Dockerfiles a user
# builds from the default bases:
#
#   docker/local/build.sh            # rsearch:cpu, rsearch-mlflow:3.17.2, rsearch-local/postgres:15
#   docker/local/build.sh --cuda     # also rsearch:cuda (on the CPU stand-in: no CUDA userspace)
#
# Steps, each skipped when its result is already there (cached per machine):
#   1. Debian bookworm minbase by debootstrap, kept as a tarball in $RSEARCH_DOCKER_CACHE and
#      imported as rsearch-local/debian:bookworm;
#   2. a wheelhouse in $RSEARCH_DOCKER_CACHE/wheelhouse (`pip download` with the host's pip
#      configuration), served to the builds on 127.0.0.1 only (builds use the host network);
#   3. the stand-in bases rsearch-local/ray:2.60.0-py311-cpu and rsearch-local/python:3.11-slim,
#      and PostgreSQL 15 from Debian's packages as rsearch-local/postgres:15;
#   4. docker/Dockerfile.cpu and docker/Dockerfile.mlflow on those bases.
# Every step prints its wall time. Needs root (debootstrap) and a running Docker daemon.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${RSEARCH_DOCKER_CACHE:-$HOME/.cache/rsearch/docker}"
WHEELS="$CACHE/wheelhouse"
ROOTFS_TAR="$CACHE/debian-bookworm-minbase.tar"
DEBIAN_IMAGE=rsearch-local/debian:bookworm
RAY_BASE=rsearch-local/ray:2.60.0-py311-cpu
PYTHON_BASE=rsearch-local/python:3.11-slim
POSTGRES_IMAGE=rsearch-local/postgres:15
NICE=(nice -n 19)
export DOCKER_BUILDKIT=0

step() { # step NAME COMMAND...: runs COMMAND and prints how long it took.
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "build.sh: $name took $((SECONDS - start)) s"
}

have_image() { docker image inspect "$1" > /dev/null 2>&1; }

debian_base() {
    have_image "$DEBIAN_IMAGE" && return
    if [ ! -s "$ROOTFS_TAR" ]; then
        local rootfs
        rootfs="$(mktemp -d)"
        "${NICE[@]}" debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$rootfs" > "$CACHE/debootstrap.log"
        # apt's caches are of no use in an image; writing to a temporary name first keeps a
        # half-written tarball from being taken for a cached one.
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$ROOTFS_TAR.part" .
        mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
        rm -rf "$rootfs"
    fi
    docker import "$ROOTFS_TAR" "$DEBIAN_IMAGE" > /dev/null
}

wheelhouse() {
    [ -f "$WHEELS/.complete" ] && return
    mkdir -p "$WHEELS"
    # Everything the images install: the project's dependencies at the tested versions
    # (docker/constraints.txt), torch and torchvision at the Dockerfiles' versions, the
    # build backend `pip install .` needs, and the MLflow server's PostgreSQL driver.
    "${NICE[@]}" "${PYTHON:-python3}" -m pip download -q --dest "$WHEELS" -c docker/constraints.txt \
        "ray[default,tune,train]==2.60.0" torch==2.14.1 torchvision==0.29.1 \
        mlflow==3.17.2 psycopg2-binary==2.9.13 "setuptools>=77" .
    rm -f "$WHEELS"/rsearch-*
    touch "$WHEELS/.complete"
}

serve_wheels() { # starts a file server on 127.0.0.1 and sets WHEELS_URL.
    # The URL is a build argument, so part of every layer's cache key: the same port each time
    # keeps unchanged layers cached; any free one when it is taken (those layers rebuild).
    local port="${RSEARCH_WHEELS_PORT:-38417}"
    if ! python3 -c "import socket; socket.socket().bind(('127.0.0.1', $port))" 2> /dev/null; then
        port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fi
    python3 -m http.server --bind 127.0.0.1 --directory "$WHEELS" "$port" > /dev/null 2>&1 &
    SERVER_PID=$!
    trap 'kill "$SERVER_PID" 2> /dev/null || true' EXIT
    WHEELS_URL="http://127.0.0.1:$port/"
    for _ in $(seq 50); do
        python3 -c "import urllib.request as u; u.urlopen('$WHEELS_URL', timeout=1)" \
            2> /dev/null && return
        sleep 0.2
    done
    echo "build.sh: the wheelhouse server did not start" >&2
    exit 1
}

build() { # build TAG DOCKERFILE CONTEXT [ARGS...]: an offline build from the wheelhouse.
    local tag=$1 file=$2 context=$3
    shift 3
    # -q prints the image id only; the legacy builder's deprecation notice is dropped.
    "${NICE[@]}" docker build -q --network host -t "$tag" -f "$file" \
        --build-arg PIP_NO_INDEX=1 --build-arg "PIP_FIND_LINKS=$WHEELS_URL" "$@" "$context" \
        2> >(grep -v -e DEPRECATED -e 'BuildKit is currently disabled' -e 'environment-variable' \
            -e '^$' >&2)
}

build_if_missing() { have_image "$1" || build "$@"; }

rebuild() { # rebuild TAG ...: build, then drop the image the tag named before if it changed.
    local old
    old="$(docker image inspect -f '{{.Id}}' "$1" 2> /dev/null || true)"
    build "$@"
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$1")" ]; then
        docker image rm "$old" > /dev/null 2>&1 || true # still used by a container: kept
    fi
}

main() {
    local cuda=0
    [ "${1:-}" = --cuda ] && cuda=1
    mkdir -p "$CACHE"
    # The download (network-bound) runs while debootstrap and the import (disk-bound) do.
    step "wheelhouse" wheelhouse &
    local download=$!
    step "debian base" debian_base
    wait "$download"
    serve_wheels
    step "ray base" build_if_missing "$RAY_BASE" docker/local/Dockerfile.ray-base docker/local
    step "python base" build_if_missing "$PYTHON_BASE" docker/local/Dockerfile.python-base \
        docker/local
    step "postgres image" build_if_missing "$POSTGRES_IMAGE" docker/local/Dockerfile.postgres \
        docker/local
    step "cpu image" rebuild rsearch:cpu docker/Dockerfile.cpu . --build-arg "BASE_IMAGE=$RAY_BASE"
    step "mlflow image" rebuild rsearch-mlflow:3.17.2 docker/Dockerfile.mlflow docker \
        --build-arg "BASE_IMAGE=$PYTHON_BASE"
    if [ "$cuda" = 1 ]; then
        step "cuda image" rebuild rsearch:cuda docker/Dockerfile.cuda . \
            --build-arg "BASE_IMAGE=$RAY_BASE"
    fi
}

main "$@"
