#!/bin/sh
# Each replica needs its own stable queue consumer name (INSTANCE). Compose cannot number
# the replicas of a scaled service, so default to the container's hostname, which stays
# the same across restarts of that container.
set -eu
if [ -z "${INSTANCE:-}" ]; then
  INSTANCE="$(hostname)"
  export INSTANCE
fi
exec /usr/local/bin/alfred "$@"
