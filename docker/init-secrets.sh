#!/bin/sh
# Creates the compose cluster's secrets: docker/.env (docker/.env.example with RAY_AUTH_TOKEN
# and POSTGRES_PASSWORD filled in) and docker/ray-token (the same Ray token, for
# `rsearch submit --token-file docker/ray-token`). Both are readable by you only (umask 077,
# so mode 600 from the moment they exist); an existing file is never overwritten.
#
#   sh docker/init-secrets.sh
set -eu
cd "$(dirname "$0")"
umask 077

for name in .env ray-token; do
    if [ -e "$name" ]; then
        echo "docker/$name exists; delete it first to make new secrets" >&2
        exit 1
    fi
done

# Hex from the kernel's random source: letters and digits only, safe in a URI and in sed.
random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}
token=$(random_hex 32)
password=$(random_hex 16)

printf '%s\n' "$token" > ray-token
sed -e "s/^RAY_AUTH_TOKEN=.*/RAY_AUTH_TOKEN=$token/" \
    -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$password/" .env.example > .env
echo "created docker/.env and docker/ray-token (mode 600)"
