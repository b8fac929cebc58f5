#!/usr/bin/env bash
# A PostgreSQL 15 primary and a hot standby with synchronous streaming
# replication, for the cluster tests (failover, a standby that goes away).
#
#   pg-pair.sh start DIR          initdb the primary, pg_basebackup the standby, start
#                                 both; waits until the standby is sync. Prints
#                                 PG_PRIMARY_URL, PG_STANDBY_URL, PG_PRIMARY_PORT,
#                                 PG_STANDBY_PORT, PG_PAIR_DIR
#   pg-pair.sh promote DIR        kill the primary (immediate), promote the standby,
#                                 wait until it takes writes; prints the time taken
#   pg-pair.sh stop-standby DIR   stop the standby (fast); sync commits on the primary
#                                 then block until it is back
#   pg-pair.sh start-standby DIR  start the standby again
#   pg-pair.sh stop DIR           stop whichever of the two still runs
#   pg-pair.sh status DIR         exit 0 if either server runs, 3 if not
#
# Data in DIR/primary and DIR/standby, logs in DIR/*.log, sockets in DIR/run.
# `start` on a DIR whose pair (either server) is running fails (see common.sh);
# a DIR left by a stopped run is wiped and reused; a failed start stops what it
# started. The servers run as
# `postgres`, so DIR must be reachable by that user.
set -euo pipefail
SCRIPT_NAME=pg-pair.sh
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PG_BIN=/usr/lib/postgresql/15/bin

usage() {
    echo "usage: $0 start|stop|promote|stop-standby|start-standby|status DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
ACTION=$1
DIR=$(abs_dir "$2")
PRIMARY=$DIR/primary
STANDBY=$DIR/standby

# Run a command as postgres from a directory that user can enter.
as_pg() { (cd "$DIR" && runuser -u postgres -- "$@"); }

# alive DATADIR: that server's postmaster runs (and is ours).
alive() { pidfile_alive "$1/postmaster.pid"; }
running() { alive "$PRIMARY" || alive "$STANDBY"; }

# sql PORT QUERY: one query on db test, unaligned output; bounded.
sql() {
    PGCONNECT_TIMEOUT=3 timeout 10 psql -X -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$1" -U postgres -d test -c "$2"
}

# Ports of a started pair, from DIR/env.
load_ports() {
    [[ -f $DIR/env ]] || die "no pair was started in $DIR (no $DIR/env)"
    P1=$(sed -n 's/^PG_PRIMARY_PORT=//p' "$DIR/env")
    P2=$(sed -n 's/^PG_STANDBY_PORT=//p' "$DIR/env")
    [[ -n $P1 && -n $P2 ]] || die "$DIR/env has no PG_PRIMARY_PORT/PG_STANDBY_PORT"
}

pg_start() { # DATADIR NAME
    as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$DIR/$2.log" -w -t 30 start >&2 ||
        die "$2 did not start; see $DIR/$2.log"
}

pg_stop() { # DATADIR NAME MODE
    alive "$1" || return 0
    if ! as_pg "$PG_BIN/pg_ctl" -D "$1" -m "$3" -t 30 stop >&2; then
        log "$2 did not stop within 30 s; signalling it by pid"
        stop_pidfile "$1/postmaster.pid"
    fi
}

# The probes that wait_until polls.
accepts_writes() { # PORT: a read-write server whose commit returns
    [[ $(sql "$1" 'select pg_is_in_recovery()') == f ]] && sql "$1" 'select txid_current()'
}
standby_is_sync() {
    [[ $(sql "$P1" "select count(*) from pg_stat_replication
                   where application_name = 'standby1' and state = 'streaming'
                     and sync_state = 'sync'") == 1 ]]
}
standby_in_recovery() { [[ $(sql "$P2" 'select pg_is_in_recovery()') == t ]]; }

start() {
    local t0
    t0=$(now)
    need_packages postgresql-15=$PG_BIN/initdb postgresql-client=psql
    prepare_dir running
    check_reachable postgres
    trap 'rc=$?; if ((rc)); then log "start failed: stopping what it started"; stop; fi' EXIT
    P1=$(free_port)
    P2=$(free_port)
    mkdir -p "$DIR/run"
    chown -R postgres: "$DIR"

    as_pg "$PG_BIN/initdb" -D "$PRIMARY" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 ||
        die "initdb failed; see $DIR/initdb.log"
    # Later settings win, so appending overrides initdb's defaults. The standby
    # copies this file; it gets its own port below.
    cat >>"$PRIMARY/postgresql.conf" <<CONF

# --- pg-pair.sh ---
listen_addresses = '127.0.0.1'
port = $P1
unix_socket_directories = '$DIR/run'
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
fsync = off
shared_buffers = '64MB'
CONF
    pg_start "$PRIMARY" primary
    # Before synchronous_standby_names is set: with no standby yet this commit
    # would wait forever.
    PGCONNECT_TIMEOUT=3 timeout 30 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P1" \
        -U postgres -d postgres -c 'create database test' >&2

    # -R writes standby.signal and primary_conninfo (with our application_name).
    as_pg "$PG_BIN/pg_basebackup" -D "$STANDBY" -R -X stream -c fast --no-sync \
        -d "host=127.0.0.1 port=$P1 user=postgres application_name=standby1" >&2 ||
        die "pg_basebackup of the standby failed"
    grep -q 'application_name=standby1' "$STANDBY/postgresql.auto.conf" ||
        echo "primary_conninfo = 'host=127.0.0.1 port=$P1 user=postgres application_name=standby1'" \
            >>"$STANDBY/postgresql.auto.conf"
    echo "port = $P2" >>"$STANDBY/postgresql.conf"

    # Only the primary waits for the standby: once promoted, the standby has no
    # synchronous_standby_names and takes writes alone.
    cat >>"$PRIMARY/postgresql.conf" <<CONF
synchronous_standby_names = 'standby1'
synchronous_commit = on
CONF
    as_pg "$PG_BIN/pg_ctl" -D "$PRIMARY" reload >/dev/null

    pg_start "$STANDBY" standby
    wait_until 30 "standby (port $P2) streaming as sync in the primary's pg_stat_replication" standby_is_sync
    wait_until 30 "primary (port $P1) to accept a synchronous commit" accepts_writes "$P1"
    wait_until 30 "standby (port $P2) to serve reads in recovery" standby_in_recovery

    trap - EXIT
    emit PG_PRIMARY_URL "postgres://postgres@127.0.0.1:$P1/test"
    emit PG_STANDBY_URL "postgres://postgres@127.0.0.1:$P2/test"
    emit PG_PRIMARY_PORT "$P1"
    emit PG_STANDBY_PORT "$P2"
    emit PG_PAIR_DIR "$DIR"
    log "primary on $P1 and sync standby on $P2 ready in $(elapsed "$t0")s"
}

promote() {
    local t0 t1
    load_ports
    alive "$STANDBY" || die "the standby is not running; nothing to promote"
    [[ $(sql "$P2" 'select pg_is_in_recovery()') == t ]] || die "the standby is already promoted"
    t0=$(now)
    if alive "$PRIMARY"; then
        as_pg "$PG_BIN/pg_ctl" -D "$PRIMARY" -m immediate -t 30 stop >&2 ||
            stop_pidfile "$PRIMARY/postmaster.pid"
    fi
    t1=$(now)
    as_pg "$PG_BIN/pg_ctl" -D "$STANDBY" -W promote >&2
    wait_until 30 "promoted standby (port $P2) to accept writes" accepts_writes "$P2"
    log "primary killed in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s;" \
        "standby promoted and taking writes $(elapsed "$t1")s later ($(elapsed "$t0")s in all)"
}

stop_standby() {
    load_ports
    alive "$STANDBY" || die "the standby is not running"
    pg_stop "$STANDBY" standby fast
    if [[ -f $STANDBY/standby.signal ]] && alive "$PRIMARY"; then
        log "standby stopped (the primary's synchronous commits now wait for it)"
    else
        log "standby stopped"
    fi
}

start_standby() {
    local t0
    load_ports
    alive "$STANDBY" && die "the standby is already running"
    t0=$(now)
    pg_start "$STANDBY" standby
    if [[ -f $STANDBY/standby.signal ]] && alive "$PRIMARY"; then
        wait_until 30 "standby (port $P2) streaming as sync again" standby_is_sync
    fi
    log "standby started in $(elapsed "$t0")s"
}

stop() {
    local was=0
    running && was=1
    pg_stop "$STANDBY" standby fast
    pg_stop "$PRIMARY" primary fast
    if ((was)); then log "pair stopped"; else log "pair was not running"; fi
}

case $ACTION in
start) start ;;
stop) stop ;;
promote) promote ;;
stop-standby) stop_standby ;;
start-standby) start_standby ;;
status) running || exit 3 ;;
*) usage ;;
esac
