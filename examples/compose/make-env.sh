#!/bin/sh
# Give this compose project its portalloc pair: write BACKEND_PORT and FRONTEND_PORT into
# the .env beside docker-compose.yml (other lines of .env are kept), then check that the
# file publishes exactly that pair and no port another app holds.
#
#   ./make-env.sh model_a 1 && docker compose up
#
# (Without a .env: `eval "$(portalloc env model_a 1)" && docker compose up` works too,
# since compose takes variables from the environment first.)
set -eu
[ $# -eq 2 ] || { echo "usage: $0 MODEL APP_NUM" >&2; exit 2; }
cd "$(dirname "$0")"
portalloc dotenv "$1" "$2" .env
portalloc compose-check docker-compose.yml --model "$1" --app "$2"
