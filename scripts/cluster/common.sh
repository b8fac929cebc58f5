# shellcheck shell=bash
# Helpers shared by the cluster scripts in this folder. Source it, don't run it:
#   . "$(dirname "$0")/common.sh"
#
# The scripts set DIR (the absolute directory of one setup) before calling emit,
# stop_pidfile or free_port.
#
# Conventions for every script here:
#   * `start DIR` refuses to run while the setup in DIR is still running (it says
#     so and exits 1: run `stop DIR` first). A DIR left by an earlier, stopped run
#     of the same script (its marker file .cluster-setup names the script) is
#     wiped and reused; any other non-empty DIR is refused, so a wrong path is
#     never wiped.
#   * stdout carries only KEY=VALUE lines (also appended to DIR/env); progress,
#     timings and errors go to stderr.

set -euo pipefail

readonly CLUSTER_MARKER=.cluster-setup

log() { printf '%s: %s\n' "${SCRIPT_NAME:-cluster}" "$*" >&2; }
# die writes to the stderr saved by wait_until, if any, so that a probe that
# gives up (wait_until silences probes) is still heard.
die() {
    # Back to the real stderr for this message and the EXIT traps that follow.
    if [[ -n ${_STDERR_FD:-} ]]; then exec 2>&"$_STDERR_FD"; fi
    printf '%s: ERROR: %s\n' "${SCRIPT_NAME:-cluster}" "$*" >&2
    exit 1
}

# Seconds since the epoch with nanoseconds, for timings.
now() { date +%s.%N; }
# elapsed START: seconds since START (a `now` value), e.g. 3.42.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# need_packages PKG=CHECK...: for each pair, CHECK is a command name or an
# absolute path; when it is missing, Debian package PKG is installed with apt-get
# (one `apt-get update` first if the first try fails). Exits 1 loudly on failure.
need_packages() {
    local spec pkg check missing=()
    for spec in "$@"; do
        pkg=${spec%%=*} check=${spec#*=}
        if [[ $check == /* ]]; then
            [[ -e $check ]] || missing+=("$pkg")
        else
            command -v "$check" >/dev/null 2>&1 || missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    log "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${missing[@]}" >&2; then
        if ! { apt-get update -q >&2 && apt-get install -y -q "${missing[@]}" >&2; }; then
            {
                echo "############################################################"
                echo "## ${SCRIPT_NAME:-cluster}: could not install: ${missing[*]}"
                echo "## (apt-get install -y ${missing[*]} failed; see above)"
                echo "############################################################"
            } >&2
            exit 1
        fi
    fi
}

# port_listening PORT: true when something listens on TCP PORT (any address).
port_listening() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# free_port: print a TCP port in 20000-40000 that nothing listens on, outside
# the kernel's ephemeral range (where outgoing connections take their local
# ports). Ports it has handed out are remembered in DIR/.ports (or /tmp when
# DIR is unset), so several calls before the servers bind never repeat one.
free_port() {
    local claims=${DIR:-/tmp}/.ports port tries eph_lo=0 eph_hi=0
    touch "$claims"
    if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
        read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
        # (Unless that range covers all of ours.)
        ((eph_lo <= 20000 && eph_hi >= 40000)) && eph_lo=0 eph_hi=0
    fi
    for ((tries = 0; tries < 1000; tries++)); do
        port=$((20000 + RANDOM % 20001))
        ((port == 5432 || port == 3306)) && continue
        ((port >= eph_lo && port <= eph_hi)) && continue
        grep -qx "$port" "$claims" && continue
        port_listening "$port" && continue
        echo "$port" >>"$claims"
        echo "$port"
        return 0
    done
    die "no free TCP port found in 20000-40000"
}

# wait_until SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.2 s until it
# succeeds; after SECONDS, print which thing did not become ready (and the
# command's last error output) and exit 1.
wait_until() {
    local seconds=$1 what=$2 deadline errfile
    shift 2
    deadline=$(awk -v n="$(now)" -v s="$seconds" 'BEGIN { printf "%.3f", n + s }')
    errfile=$(mktemp)
    exec {_STDERR_FD}>&2
    until "$@" >/dev/null 2>"$errfile"; do
        if awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
            sed 's/^/    last error: /' "$errfile" | tail -n 3 >&2
            rm -f "$errfile"
            die "timed out after ${seconds}s waiting for: $what"
        fi
        sleep 0.2
    done
    rm -f "$errfile"
    exec {_STDERR_FD}>&-
    unset _STDERR_FD
}

# pid_is_ours PID: the process is alive and its command line names a path
# under DIR (every server started here gets its config or data path under DIR
# on its command line), so a recycled pid of another process is never signalled.
pid_is_ours() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "${DIR:?DIR unset}/"
}

# stop_pidfile FILE: TERM the pid in FILE (first line) if it is alive and ours,
# wait up to 30 s for it to exit, then KILL it. Removes FILE.
stop_pidfile() {
    local file=$1 pid i
    [[ -f $file ]] || return 0
    pid=$(head -n1 "$file" | tr -dc 0-9)
    if [[ -n $pid ]] && pid_is_ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ($file) ignored TERM for 30 s: sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 25; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.2
            done
        fi
    fi
    rm -f "$file"
}

# pidfile_alive FILE: the pid in FILE is running and ours.
pidfile_alive() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(head -n1 "$1" | tr -dc 0-9)
    [[ -n $pid ]] && pid_is_ours "$pid"
}

# emit KEY VALUE: print KEY=VALUE on stdout and append it to DIR/env.
emit() {
    printf '%s=%s\n' "$1" "$2"
    printf '%s=%s\n' "$1" "$2" >>"${DIR:?DIR unset}/env"
}

# abs_dir PATH: PATH made absolute (it need not exist yet).
abs_dir() {
    local p=$1
    [[ $p == /* ]] || p=$PWD/$p
    # Drop trailing slashes so the path matches what servers show in their argv.
    while [[ $p == */ && $p != / ]]; do p=${p%/}; done
    printf '%s\n' "$p"
}

# prepare_dir RUNNING_CHECK: make DIR ready for a fresh start. RUNNING_CHECK is
# a command that succeeds while the setup in DIR is running (then: exit 1).
prepare_dir() {
    local running_check=$1
    if [[ -d $DIR ]] && [[ -n $(ls -A "$DIR") ]]; then
        [[ -f $DIR/$CLUSTER_MARKER ]] ||
            die "$DIR is not empty and was not made by these scripts; refusing to use it"
        [[ $(cat "$DIR/$CLUSTER_MARKER") == "$SCRIPT_NAME" ]] ||
            die "$DIR was made by $(cat "$DIR/$CLUSTER_MARKER"), not $SCRIPT_NAME; refusing to use it"
        if "$running_check"; then
            die "a setup is already running in $DIR; run '$0 stop $DIR' first"
        fi
        log "reusing $DIR (left by an earlier, stopped run)"
        find "$DIR" -mindepth 1 -delete
    fi
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    echo "$SCRIPT_NAME" >"$DIR/$CLUSTER_MARKER"
}

# check_reachable USER: USER can get into DIR (every parent must be searchable),
# which servers run as postgres need.
check_reachable() {
    runuser -u "$1" -- test -x "$DIR" ||
        die "user $1 cannot reach $DIR (a parent directory is not searchable, e.g. a 0700 mktemp dir); pick another DIR"
}
