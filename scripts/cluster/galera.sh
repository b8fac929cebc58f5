#!/usr/bin/env bash
# A 3-node MariaDB 10.11 Galera cluster on 127.0.0.1, for the cluster tests.
#
#   galera.sh start DIR   init and start node1 (new cluster), then node2 and node3
#                         (rsync SST from the cluster); waits until all three are
#                         Synced in a cluster of 3. Prints GALERA_URLS, GALERA_PORTS
#   galera.sh stop DIR    stop the three mariadbd processes by their pidfiles
#   galera.sh status DIR  exit 0 if any node runs, 3 if not
#
# Each node has DIR/nodeN/{my.cnf,data,error.log,mariadbd.pid,mariadbd.sock} and
# its own client, gcomm, IST and SST ports. mariadbd runs as `mysql`
# (--user=mysql, datadirs owned by mysql), so DIR must be reachable by that user:
# as root, the rsync daemon of an SST switches to `nobody` and cannot write the
# joiner's datadir. The pid that `stop` signals is in DIR/nodeN/launch.pid.
# `start` on a DIR whose cluster (any node) is running fails (see common.sh);
# a DIR left by a stopped run is wiped and reused. A failed start stops the
# nodes it started.
set -euo pipefail
SCRIPT_NAME=galera.sh
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
ACTION=$1
DIR=$(abs_dir "$2")
NODES=(1 2 3)
START_TIMEOUT=90 # seconds for the whole start, init included

pidfile() { echo "$DIR/node$1/launch.pid"; }
running() {
    local n
    for n in "${NODES[@]}"; do pidfile_alive "$(pidfile "$n")" && return 0; done
    return 1
}

# sql PORT QUERY: one query over TCP as root with no password; tab-separated, no header.
sql() {
    timeout 10 mariadb --no-defaults -h127.0.0.1 -P"$1" -uroot --connect-timeout=3 -N -B -e "$2"
}
status_of() { # PORT VARIABLE
    sql "$1" "SHOW STATUS LIKE '$2'" | cut -f2
}
node_synced() { # PORT
    [[ $(status_of "$1" wsrep_local_state_comment) == Synced ]]
}
node_in_cluster_of_3() { # PORT
    node_synced "$1" && [[ $(status_of "$1" wsrep_cluster_size) == 3 ]]
}

# Seconds left of the start's overall budget (at least 1).
DEADLINE=0
left() { awk -v d="$DEADLINE" -v n="$(now)" 'BEGIN { s = d - n; printf "%.1f", (s < 1 ? 1 : s) }'; }

write_config() { # N
    local n=$1 d=$DIR/node$1
    cat >"$d/my.cnf" <<CNF
[mysqld]
datadir = $d/data
socket = $d/mariadbd.sock
pid-file = $d/mariadbd.pid
log-error = $d/error.log
tmpdir = $d/tmp
port = ${PORT[n]}
bind-address = 127.0.0.1
skip-name-resolve
performance_schema = OFF
default_storage_engine = InnoDB
binlog_format = ROW
innodb_autoinc_lock_mode = 2
innodb_buffer_pool_size = 64M
# Small redo log and gcache: less disk, and less for each rsync SST to copy.
innodb_log_file_size = 32M
# Galera gives durability across nodes; skip the per-commit fsync for speed.
innodb_flush_log_at_trx_commit = 2

wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = sequelstore-test
wsrep_cluster_address = gcomm://$GCOMM
wsrep_node_name = node$n
# With the port, base_port is this node's gcomm port, not the default 4567.
wsrep_node_address = 127.0.0.1:${GPORT[n]}
wsrep_node_incoming_address = 127.0.0.1:${PORT[n]}
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:${GPORT[n]};ist.recv_addr=127.0.0.1:${IPORT[n]};gcache.size=32M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:${SPORT[n]}
CNF
}

launch() { # N [EXTRA ARGS]: start mariadbd in its own session, in the background
    local n=$1 d=$DIR/node$1
    shift
    # --defaults-file must come first. Not a process-group leader here, so
    # setsid execs mariadbd in place and $! is mariadbd's pid.
    # (In a subshell, so this shell keeps no job to report on.)
    (
        setsid mariadbd --defaults-file="$d/my.cnf" --user=mysql "$@" \
            </dev/null >>"$d/stdout.log" 2>&1 &
        echo $! >"$(pidfile "$n")"
    )
}

wait_node() { # N WHAT PROBE
    local n=$1 what=$2 probe=$3
    wait_until "$(left)" "node$n (port ${PORT[n]}) $what; see $DIR/node$n/error.log" \
        node_alive_and "$n" "$probe"
}
# Stop waiting early when the node died.
node_alive_and() { # N PROBE
    pidfile_alive "$(pidfile "$1")" || die "node$1 exited; see $DIR/node$1/error.log"
    "$2" "${PORT[$1]}"
}

start() {
    local t0 n pids=()
    t0=$(now)
    DEADLINE=$(awk -v n="$t0" -v s="$START_TIMEOUT" 'BEGIN { printf "%.3f", n + s }')
    need_packages galera-4=/usr/lib/galera/libgalera_smm.so rsync=rsync \
        mariadb-server=mariadbd mariadb-client=mariadb iproute2=ss
    prepare_dir running
    check_reachable mysql
    trap 'rc=$?; if ((rc)); then log "start failed: stopping the nodes it started"; stop; fi' EXIT

    declare -ga PORT GPORT IPORT SPORT
    GCOMM=
    for n in "${NODES[@]}"; do
        PORT[n]=$(free_port) GPORT[n]=$(free_port) IPORT[n]=$(free_port) SPORT[n]=$(free_port)
        GCOMM+=${GCOMM:+,}127.0.0.1:${GPORT[n]}
    done
    for n in "${NODES[@]}"; do
        mkdir -p "$DIR/node$n/tmp"
        write_config "$n"
        chown -R mysql: "$DIR/node$n"
        # Nodes 2 and 3 get node1's data by SST anyway, but each starts from a
        # datadir of its own. The three inits run side by side (each with its
        # own tmpdir: in a shared one their temporary tables collide).
        mariadb-install-db --no-defaults --datadir="$DIR/node$n/data" --user=mysql \
            --auth-root-authentication-method=normal --skip-test-db \
            --tmpdir="$DIR/node$n/tmp" --innodb-log-file-size=32M >"$DIR/node$n/install-db.log" 2>&1 &
        pids+=($!)
    done
    for n in "${NODES[@]}"; do
        wait "${pids[n - 1]}" || die "mariadb-install-db failed for node$n; see $DIR/node$n/install-db.log"
    done

    launch 1 --wsrep-new-cluster
    wait_node 1 "to become Synced as a new cluster" node_synced
    log "node1 Synced after $(elapsed "$t0")s"
    # root over TCP with no password (install-db made root@localhost and
    # root@127.0.0.1; make sure), and the test database; SST copies both.
    sql "${PORT[1]}" "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        CREATE DATABASE IF NOT EXISTS test;" ||
        die "could not set up root@127.0.0.1 and db test on node1"

    for n in 2 3; do
        launch "$n"
        wait_node "$n" "to join and become Synced" node_synced
        log "node$n joined (SST) and Synced after $(elapsed "$t0")s"
    done
    for n in "${NODES[@]}"; do
        wait_node "$n" "to see wsrep_cluster_size=3 and Synced" node_in_cluster_of_3
        [[ $(sql "${PORT[n]}" "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name='test'") == 1 ]] ||
            die "node$n has no database test"
    done
    trap - EXIT

    emit GALERA_URLS "mysql://root@127.0.0.1:${PORT[1]}/test,mysql://root@127.0.0.1:${PORT[2]}/test,mysql://root@127.0.0.1:${PORT[3]}/test"
    emit GALERA_PORTS "${PORT[1]},${PORT[2]},${PORT[3]}"
    log "Galera cluster of 3 ready on ports ${PORT[1]},${PORT[2]},${PORT[3]} in $(elapsed "$t0")s"
}

# stop_node N: TERM mariadbd (bounded, then KILL), then anything it left in its
# process group (e.g. an rsync daemon of an SST that was cut short).
stop_node() {
    local file pgid pid
    file=$(pidfile "$1")
    [[ -f $file ]] || return 0
    pgid=$(head -n1 "$file" | tr -dc 0-9)
    stop_pidfile "$file"
    [[ -n $pgid ]] || return 0
    for pid in $(pgrep -g "$pgid" 2>/dev/null || true); do
        if pid_is_ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
}

stop() {
    local n was=0 pids=()
    running && was=1
    # The three shut down side by side.
    for n in "${NODES[@]}"; do
        stop_node "$n" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    if ((was)); then log "Galera nodes stopped"; else log "Galera was not running"; fi
}

case $ACTION in
start) start ;;
stop) stop ;;
status) running || exit 3 ;;
*) usage ;;
esac
