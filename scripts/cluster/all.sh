#!/usr/bin/env bash
# All three cluster setups for the cluster tests, one after the other:
#
#   all.sh start DIR    pgbouncer.sh in DIR/pgbouncer, pg-pair.sh in DIR/pg-pair,
#                       galera.sh in DIR/galera; prints every KEY=VALUE they emit
#                       (PGBOUNCER_*, PG_*, GALERA_*) and writes them to DIR/env
#   all.sh stop DIR     stop all three (each whatever of it still runs)
#   all.sh status DIR   exit 0 if any of them runs, 3 if not
#
# `start` fails while any of the three runs in DIR (run `stop` first); a DIR
# left by a stopped run is wiped and reused. When one setup fails to start,
# the ones already started are stopped again and `start` exits 1.
#
# Use: eval "$(scripts/cluster/all.sh start /tmp/cluster)" or source DIR/env.
set -euo pipefail
SCRIPT_NAME=all.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$HERE/common.sh"

SETUPS=(pgbouncer pg-pair galera)

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
ACTION=$1
DIR=$(abs_dir "$2")

running() {
    local s
    for s in "${SETUPS[@]}"; do
        [[ -d $DIR/$s ]] && "$HERE/$s.sh" status "$DIR/$s" && return 0
    done
    return 1
}

start() {
    local t0 s i line started=()
    t0=$(now)
    prepare_dir running
    for s in "${SETUPS[@]}"; do
        # The sub-script's own DIR/$s/env holds what it emitted; stdout is
        # dropped so that nothing of it lingers on our caller's pipe.
        if ! "$HERE/$s.sh" start "$DIR/$s" >/dev/null; then
            log "$s failed to start; stopping: ${started[*]:-nothing}"
            rm -f "$DIR/env" # its lines name servers that are about to go
            for ((i = ${#started[@]} - 1; i >= 0; i--)); do
                "$HERE/${started[i]}.sh" stop "$DIR/${started[i]}" || true
            done
            exit 1
        fi
        started+=("$s")
        while IFS= read -r line; do
            emit "${line%%=*}" "${line#*=}"
        done <"$DIR/$s/env"
    done
    log "all three setups ready in $(elapsed "$t0")s (env in $DIR/env)"
}

stop() {
    local s i rc=0
    # Reverse order of start; one that fails to stop doesn't keep the others up.
    for ((i = ${#SETUPS[@]} - 1; i >= 0; i--)); do
        s=${SETUPS[i]}
        [[ -d $DIR/$s ]] || continue
        "$HERE/$s.sh" stop "$DIR/$s" || rc=1
    done
    return "$rc"
}

case $ACTION in
start) start ;;
stop) stop ;;
status) running || exit 3 ;;
*) usage ;;
esac
