#!/usr/bin/env bash
# PgBouncer in transaction pool mode in front of the machine's PostgreSQL
# (127.0.0.1:5432), for the cluster tests.
#
#   pgbouncer.sh start DIR   start it on a free port; prints PGBOUNCER_URL, PGBOUNCER_PORT
#   pgbouncer.sh stop DIR    stop it (by its pidfile)
#   pgbouncer.sh status DIR  exit 0 if it runs, 3 if not
#
# `start` on a DIR whose PgBouncer is running fails (see common.sh); a DIR left
# by a stopped run is wiped and reused; a failed start stops what it started.
# PgBouncer refuses to run as root, so it
# runs as `postgres`, and DIR must be reachable by that user.
set -euo pipefail
SCRIPT_NAME=pgbouncer.sh
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
ACTION=$1
DIR=$(abs_dir "$2")
PIDFILE=$DIR/pgbouncer.pid

running() { pidfile_alive "$PIDFILE"; }

psql_bouncer() {
    PGCONNECT_TIMEOUT=3 timeout 10 psql -X -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PORT" -U postgres "$@"
}

start() {
    local t0 upstream
    t0=$(now)
    need_packages pgbouncer=/usr/sbin/pgbouncer postgresql-client=psql
    prepare_dir running
    check_reachable postgres
    trap 'rc=$?; if ((rc)); then log "start failed: stopping what it started"; stop; fi' EXIT

    # The upstream must be up, or the readiness probe below can never pass.
    upstream=$(PGCONNECT_TIMEOUT=3 timeout 10 psql -X -At -h 127.0.0.1 -p 5432 -U postgres test \
        -c 'select 1' 2>&1) || die "PostgreSQL on 127.0.0.1:5432 (db test) is not reachable: $upstream"

    PORT=$(free_port)
    mkdir -p "$DIR/run"
    # auth_type trust still needs every user listed in the auth_file.
    echo '"postgres" ""' >"$DIR/userlist.txt"
    cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir = $DIR/run
pidfile = $PIDFILE
logfile = $DIR/pgbouncer.log
auth_type = trust
auth_file = $DIR/userlist.txt
; The admin console (psql ... pgbouncer -c 'SHOW POOLS').
admin_users = postgres
stats_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
; sqlx sends extra_float_digits in its startup packet; PgBouncer 1.18 would
; refuse the connection over it.
ignore_startup_parameters = extra_float_digits
INI
    chown -R postgres: "$DIR"

    # -d: daemonize; PgBouncer writes the pidfile itself.
    runuser -u postgres -- /usr/sbin/pgbouncer -d -q "$DIR/pgbouncer.ini" ||
        die "pgbouncer failed to start; see $DIR/pgbouncer.log"
    wait_until 20 "PgBouncer on 127.0.0.1:$PORT to serve 'select 1' on db test" \
        psql_bouncer test -c 'select 1'

    trap - EXIT
    emit PGBOUNCER_URL "postgres://postgres@127.0.0.1:$PORT/test"
    emit PGBOUNCER_PORT "$PORT"
    log "PgBouncer ready on 127.0.0.1:$PORT (transaction pooling) in $(elapsed "$t0")s"
}

stop() {
    if running; then
        stop_pidfile "$PIDFILE"
        log "PgBouncer stopped"
    else
        rm -f "$PIDFILE"
        log "PgBouncer was not running"
    fi
}

case $ACTION in
start) start ;;
stop) stop ;;
status) running || exit 3 ;;
*) usage ;;
esac
