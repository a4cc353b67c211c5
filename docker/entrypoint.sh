#!/bin/sh
# Container entrypoint. `serve` (the default) or any leading flag runs the gateway configured from the
# environment; anything else runs as given (`distillguard check --config ...`, `distillguard keys new ...`).
#   DISTILLGUARD_CONFIG         policy YAML (required)
#   DISTILLGUARD_HOST / _PORT   where to listen (the policy's `listen` is for running outside a container)
#   DISTILLGUARD_OPERATOR_HOST / _OPERATOR_PORT   optional: where /metrics and /admin listen (default: the
#                               policy's `operator`, 127.0.0.1:9090: inside the container only)
#   DISTILLGUARD_WORKERS        worker processes; 0 = one per CPU of the container's CPU limit
#   DISTILLGUARD_DRAIN_TIMEOUT  seconds streams in flight may run after SIGTERM
#   DISTILLGUARD_KEYS_FILE      optional: a keys file replacing the policy's auth.keys_file
#   DISTILLGUARD_UPSTREAM       optional: a URL replacing every upstream's url
# Extra arguments are appended, so `docker run IMAGE --workers 2` overrides DISTILLGUARD_WORKERS.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- serve "$@"
fi

if [ "$1" = "serve" ]; then
    shift
    : "${DISTILLGUARD_CONFIG:?set DISTILLGUARD_CONFIG to the policy YAML path}"
    set -- distillguard serve \
        --config "$DISTILLGUARD_CONFIG" \
        --host "${DISTILLGUARD_HOST:-0.0.0.0}" \
        --port "${DISTILLGUARD_PORT:-8080}" \
        ${DISTILLGUARD_OPERATOR_HOST:+--operator-host "$DISTILLGUARD_OPERATOR_HOST"} \
        ${DISTILLGUARD_OPERATOR_PORT:+--operator-port "$DISTILLGUARD_OPERATOR_PORT"} \
        --workers "${DISTILLGUARD_WORKERS:-0}" \
        --drain-timeout "${DISTILLGUARD_DRAIN_TIMEOUT:-30}" \
        ${DISTILLGUARD_KEYS_FILE:+--keys-file "$DISTILLGUARD_KEYS_FILE"} \
        ${DISTILLGUARD_UPSTREAM:+--upstream "$DISTILLGUARD_UPSTREAM"} \
        "$@"
fi

# exec: the gateway becomes PID 1 and receives SIGTERM itself, so it drains instead of being killed.
exec "$@"
