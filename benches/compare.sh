#!/usr/bin/env bash
# ftpdlib side by side with pyftpdlib 2.2.0, vsftpd, proftpd, pure-ftpd and unFTP (plus a bare
# mio loop that only logs clients in: the floor for CPU per login and memory per session), all
# on loopback ports of this machine, driven by the same ftpbench (benches/ftpbench/) in one run.
#
#   sudo benches/compare.sh            # as root: installs what is missing, runs, writes results
#
# Writes benches/results/compare.md (machine, commands, one table with ratios to ftpdlib),
# compare.svg (bar chart), compare.tsv (raw numbers) and compare.log (every ftpbench output).
#
# Knobs (environment):
#   SIZE=100M         file size of the N-concurrent RETR / STOR workloads
#   CLIENTS=200       N of the concurrence workload
#   SECONDS_=2        length of the single-client STOR / RETR measurements
#   IDLE_N=300,1000,10000        session counts for idle memory and logins (event-loop servers)
#   IDLE_N_FORKING=300,1000      the same for the forking servers (a process or two per session)
#   IDLE_N_UNFTP=300,1000,5000   the same for unFTP (two descriptors per session: it panics on
#                                EMFILE near 10,000 sessions with the 20,000 open-files limit)
#   INFLIGHT_N=1000   logins with at most 32 connects in flight (vsftpd's listen queue is 32)
#   CURL_ROUNDS=3     downloads of a 1 GiB file by curl, per server and run (0: none)
#   LOGIN_ROUNDS=5    bursts per login workload for ftpdlib and the bare loop, reported as
#                     medians (a burst of 300 takes ~15 ms: one alone is mostly noise); the
#                     others, whose bursts take seconds and are far off, run one
#   SERVERS="ftpdlib pyftpdlib vsftpd proftpd pure-ftpd unftp bare"   which to run (ftpdlib first)
#   REPEAT=1          rounds: every server runs every workload once per round (the table
#                     shows medians over the rounds)
#   MORE=1            adds REPEAT rounds to the results already in OUT instead of starting
#                     over (same build only: its commit, and no uncommitted change to the
#                     sources); the table then covers all the rounds
#   TIMEOUT=300       bound on every ftpbench phase, seconds
#   LOGIN_TIMEOUT=20  bound on the all-at-once logins (a burst beyond a server's listen queue
#                     can leave clients connected but never greeted: they count as not done)
#   SKIP_INSTALL=1    do not install anything
#   FTPDLIB_DESC=...  how to name the ftpdlib build in the report (default: git describe)
#
# Only 127.0.0.1 is used. Every server started here is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TOOLS=${FTPBENCH_TOOLS:-/opt/ftpbench}      # installed servers
WORK=${FTPBENCH_WORK:-/tmp/ftpbench}        # configs, logs, pid files
DATA=${FTPBENCH_DATA:-/srv/ftpbench}        # the FTP user's home = every server's root
OUT=${OUT:-$HERE/results}
FTP_USER=user
FTP_PASS=12345

SIZE=${SIZE:-100M}
CLIENTS=${CLIENTS:-200}
SECONDS_=${SECONDS_:-2}
IDLE_N=${IDLE_N:-300,1000,10000}
IDLE_N_FORKING=${IDLE_N_FORKING:-300,1000}
IDLE_N_UNFTP=${IDLE_N_UNFTP:-300,1000,5000}
INFLIGHT_N=${INFLIGHT_N:-1000}
CURL_ROUNDS=${CURL_ROUNDS:-3}
LOGIN_ROUNDS=${LOGIN_ROUNDS:-5}
SERVERS=${SERVERS:-"ftpdlib pyftpdlib vsftpd proftpd pure-ftpd unftp bare"}
REPEAT=${REPEAT:-1}
TIMEOUT=${TIMEOUT:-300}
LOGIN_TIMEOUT=${LOGIN_TIMEOUT:-20}
PYFTPDLIB_VERSION=2.2.0

declare -A PORT=([ftpdlib]=2621 [pyftpdlib]=2622 [vsftpd]=2623 [proftpd]=2624
                 [pure-ftpd]=2625 [unftp]=2626 [bare]=2627)
declare -A LABEL=([bare]="bare-mio")
STARTED_PIDS=()
# exact server CPU time (exited children included): each server in its own cpuacct cgroup
CG_ROOT=/sys/fs/cgroup/cpuacct/ftpbench
CG_ARGS=()

log() { printf '[compare] %s\n' "$*" >&2; }

stop_all() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        # each server runs in its own session / process group (setsid): stop the group
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in "${STARTED_PIDS[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
    rmdir "$CG_ROOT"/* "$CG_ROOT" 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (it installs packages and adds a user)" >&2; exit 1; }

# --------------------------------------------------------------------------------------------
# Installation (idempotent)
# --------------------------------------------------------------------------------------------

install_all() {
    mkdir -p "$TOOLS/debs" "$WORK" "$DATA"
    # one system user for the servers that log in real accounts (vsftpd, proftpd, pure-ftpd)
    if ! id "$FTP_USER" >/dev/null 2>&1; then
        useradd --home-dir "$DATA" --no-create-home --shell /bin/bash "$FTP_USER"
    fi
    usermod --home "$DATA" "$FTP_USER" 2>/dev/null || true
    # MD5-crypt, not Debian's default yescrypt (tens of ms of CPU on purpose): the login
    # benchmarks measure the servers, not the password hash
    echo "$FTP_USER:$FTP_PASS" | chpasswd -c MD5
    chown "$FTP_USER:" "$DATA"

    if [ ! -x "$TOOLS/pyvenv/bin/python" ] ||
       ! "$TOOLS/pyvenv/bin/python" -c "import pyftpdlib, sys; sys.exit(pyftpdlib.__ver__ != '$PYFTPDLIB_VERSION')"; then
        log "pip: pyftpdlib $PYFTPDLIB_VERSION"
        python3 -m venv "$TOOLS/pyvenv"
        "$TOOLS/pyvenv/bin/pip" install -q "pyftpdlib==$PYFTPDLIB_VERSION"
    fi

    # vsftpd, proftpd-core and pure-ftpd conflict as packages (ftp-server): vsftpd with apt,
    # the other two unpacked into $TOOLS with their libraries installed from apt.
    local need_apt=
    command -v /usr/sbin/vsftpd >/dev/null || need_apt=1
    command -v curl >/dev/null || need_apt=1
    [ -x "$TOOLS/proftpd/usr/sbin/proftpd" ] || need_apt=1
    [ -x "$TOOLS/pureftpd/usr/sbin/pure-ftpd" ] || need_apt=1
    if [ -n "$need_apt" ]; then
        log "apt: vsftpd (+ libraries of proftpd-core and pure-ftpd)"
        apt-get update -qq
        local made_policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            # do not let the package start a vsftpd on port 21
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            made_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            vsftpd curl libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libidn2-0 \
            libsodium23 libncursesw6 libacl1 libcap2 libssl3 libpam0g >/dev/null
        [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
        (cd "$TOOLS/debs" && apt-get download -qq proftpd-core pure-ftpd 2>/dev/null)
        rm -rf "$TOOLS/proftpd" "$TOOLS/pureftpd"
        dpkg-deb -x "$(ls "$TOOLS"/debs/proftpd-core_*.deb | tail -1)" "$TOOLS/proftpd"
        dpkg-deb -x "$(ls "$TOOLS"/debs/pure-ftpd_*.deb | tail -1)" "$TOOLS/pureftpd"
    fi
    mkdir -p /var/run/vsftpd/empty

    if [ ! -x "$TOOLS/unftp/bin/unftp" ]; then
        log "cargo install unftp (a few minutes)"
        if ! timeout 1200 cargo install --locked --root "$TOOLS/unftp" unftp >"$WORK/unftp-install.log" 2>&1; then
            log "unftp did not build (see $WORK/unftp-install.log): skipped"
        fi
    fi
}

# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

port_open() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }

wait_port() {
    local i
    for i in $(seq 1 100); do
        port_open "$1" && return 0
        sleep 0.1
    done
    return 1
}

# start_server NAME: starts the server in its own process group; SERVER_PID = its pid
start_server() {
    local name=$1 port=${PORT[$1]} logf="$WORK/logs/$1.log"
    mkdir -p "$WORK/logs" "$WORK/run"
    if port_open "$port"; then
        echo "compare.sh: port $port is taken; is an old server still running?" >&2
        return 1
    fi
    case $name in
    ftpdlib)
        setsid "$ROOT/target/release/ftpdlib" -w -d "$DATA" -i 127.0.0.1 -p "$port" \
            -u "$FTP_USER" -P "$FTP_PASS" --max-cons 20000 --max-cons-per-ip 0 \
            >"$logf" 2>&1 &
        ;;
    pyftpdlib)
        setsid "$TOOLS/pyvenv/bin/python" -m pyftpdlib -w -d "$DATA" -i 127.0.0.1 -p "$port" \
            -u "$FTP_USER" -P "$FTP_PASS" --max-cons 20000 --max-cons-per-ip 0 \
            >"$logf" 2>&1 &
        ;;
    vsftpd)
        cat >"$WORK/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=vsftpd
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
max_clients=20000
max_per_ip=20000
pasv_enable=YES
connect_from_port_20=NO
xferlog_enable=NO
dirmessage_enable=NO
idle_session_timeout=600
data_connection_timeout=300
secure_chroot_dir=/var/run/vsftpd/empty
ftpd_banner=vsftpd ready.
EOF
        setsid /usr/sbin/vsftpd "$WORK/vsftpd.conf" >"$logf" 2>&1 &
        ;;
    proftpd)
        cat >"$WORK/proftpd.conf" <<EOF
ServerName "proftpd"
ServerType standalone
DefaultServer on
Port $port
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
User nobody
Group nogroup
Umask 022
AllowOverwrite on
MaxInstances 20000
MaxClients none
MaxClientsPerHost none
MaxClientsPerUser none
MaxConnectionsPerHost none
UseReverseDNS off
RequireValidShell off
AuthPAM off
AuthOrder mod_auth_unix.c
DelayEngine off
UseSendfile on
WtmpLog off
TransferLog none
TimeoutIdle 600
PidFile $WORK/run/proftpd.pid
ScoreboardFile $WORK/run/proftpd.scoreboard
SystemLog $logf
<Directory />
  AllowOverwrite on
</Directory>
EOF
        setsid "$TOOLS/proftpd/usr/sbin/proftpd" -n -c "$WORK/proftpd.conf" >>"$logf" 2>&1 &
        ;;
    pure-ftpd)
        setsid "$TOOLS/pureftpd/usr/sbin/pure-ftpd" -S "127.0.0.1,$port" -l unix -E -H \
            -c 20000 -C 20000 -I 600 >"$logf" 2>&1 &
        ;;
    unftp)
        printf '[{"username": "%s", "password": "%s"}]\n' "$FTP_USER" "$FTP_PASS" >"$WORK/unftp-users.json"
        setsid "$TOOLS/unftp/bin/unftp" --bind-address "127.0.0.1:$port" --root-dir "$DATA" \
            --auth-type json --auth-json-path "$WORK/unftp-users.json" \
            --passive-ports 61000-65000 --idle-session-timeout 600 >"$logf" 2>&1 &
        ;;
    bare)
        setsid "$BENCH" --bare-server "$port" >"$logf" 2>&1 &
        ;;
    esac
    local pid=$!
    STARTED_PIDS+=("$pid")
    CG_ARGS=()
    if [ -d "${CG_ROOT%/*}" ] && mkdir -p "$CG_ROOT/$name" 2>/dev/null &&
       echo "$pid" >"$CG_ROOT/$name/cgroup.procs" 2>/dev/null; then
        CG_ARGS=(--cgroup "$CG_ROOT/$name")
    fi
    if ! wait_port "$port"; then
        echo "compare.sh: $name did not start; log:" >&2
        tail -20 "$logf" >&2
        return 1
    fi
    sleep 0.3
    SERVER_PID=$pid
}

stop_server() {
    local pid=$1 keep=() p
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]}")
    sleep 0.5
    rmdir "$CG_ROOT"/* 2>/dev/null || true
}

# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

ftpbench() { # label pid args...
    local label=$1 pid=$2
    shift 2
    local cmd=("$BENCH" -u "$FTP_USER" -p "$FTP_PASS" -H 127.0.0.1 -k "$pid" "${CG_ARGS[@]}"
               --tsv "$TSV" --label "$label" -t "$TIMEOUT" "$@")
    printf '\n$ ftpbench %s\n' "${cmd[*]:1}" >>"$LOGF"
    if ! "${cmd[@]}" 2>&1 | tee -a "$LOGF"; then
        log "$label: ftpbench $* failed (see $LOGF)"
    fi
}

# The server's CPU time so far in seconds (its cgroup when there is one, else its process
# tree's ticks).
server_cpu() { # name pid
    local usage="$CG_ROOT/$1/cpuacct.usage"
    if [ "${#CG_ARGS[@]}" -gt 0 ] && [ -r "$usage" ]; then
        awk '{printf "%.6f", $1 / 1e9}' "$usage"
    else
        local sid ticks=0 p
        sid=$(ps -o sid= -p "$2" | tr -d ' ')
        for p in $(pgrep -s "$sid"); do
            ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
        done
        awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.6f", t / hz}'
    fi
}

# RETR of a 1 GiB file by curl (the file is in the page cache): MB/s as curl reports it
# (bytes over the whole transfer, login included) and the server's CPU per GiB.
curl_retr() { # name label pid port
    local name=$1 label=$2 pid=$3 port=$4 i cpu0 cpu1 speed
    # The workloads before wrote gigabytes: flush them, so that writeback does not run
    # during the downloads, and read the file back into the page cache they may have
    # pushed it out of.
    sync
    cat "$DATA/curl-1g" >/dev/null
    for i in $(seq 1 "$CURL_ROUNDS"); do
        cpu0=$(server_cpu "$name" "$pid")
        printf '
$ curl -o /dev/null ftp://%s@127.0.0.1:%s/curl-1g
' "$FTP_USER" "$port" >>"$LOGF"
        if ! speed=$(curl -sS -o /dev/null --max-time "$TIMEOUT" -w '%{speed_download}' \
                "ftp://$FTP_USER:$FTP_PASS@127.0.0.1:$port/curl-1g" 2>>"$LOGF"); then
            log "$label: curl download failed (see $LOGF)"
            continue
        fi
        cpu1=$(server_cpu "$name" "$pid")
        awk -v l="$label" -v s="$speed" -v c0="$cpu0" -v c1="$cpu1" 'BEGIN {
            printf "%s\tRETR by curl (1 GiB)\t%.6f\tMB/sec\t\t%.3f\t\n", l, s / 1e6, c1 - c0
            printf "%s\tRETR by curl (1 GiB): server CPU/GiB\t%.6f\tsecs\t\t\t\n", l, c1 - c0
        }' | tee -a "$TSV" | cut -f2-4 | head -1 | tee -a "$LOGF"
    done
}

# One run of every workload against one server, started fresh for it.
run_server() { # name run
    local name=$1 r=$2 label=${LABEL[$1]:-$1} port=${PORT[$1]} pid n_idle=$IDLE_N
    case $name in
    vsftpd | proftpd | pure-ftpd) n_idle=$IDLE_N_FORKING ;;
    unftp) n_idle=$IDLE_N_UNFTP ;;
    esac
    local login_rounds=1
    case $name in
    ftpdlib | bare) login_rounds=$LOGIN_ROUNDS ;;
    esac
    {
        log "$label (run $r/$LAST_ROUND) on 127.0.0.1:$port"
        printf '\n### %s, run %s\n' "$label" "$r" | tee -a "$LOGF"
        # a fresh server for idle memory, so that nothing freed by earlier work is reused
        start_server "$name" || { log "$label: not started, skipped"; return 0; }
        pid=$SERVER_PID
        ftpbench "$label" "$pid" -P "$port" -b idle-memory -n "$n_idle" --max-in-flight 32
        ftpbench "$label" "$pid" -P "$port" -b logins -n "$n_idle" --login-timeout "$LOGIN_TIMEOUT" \
            --rounds "$login_rounds"
        ftpbench "$label" "$pid" -P "$port" -b logins -n "$INFLIGHT_N" --max-in-flight 32 \
            --rounds "$login_rounds"
        if [ "$name" != bare ]; then
            # at most 32 connects in flight, so that every server gets all N sessions (the
            # all-at-once burst is the logins workload's)
            ftpbench "$label" "$pid" -P "$port" -b all -n "$CLIENTS" -s "$SIZE" --seconds "$SECONDS_" \
                --max-in-flight 32 --login-timeout "$LOGIN_TIMEOUT"
            curl_retr "$name" "$label" "$pid" "$port"
        fi
        stop_server "$pid"
    }
}

machine() {
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores (nproc)"
    echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -srm)"
    echo "- OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- open files hard limit: $(ulimit -Hn)"
    echo "- client and servers share the machine and its cores; load average at the start: $LOAD_START"
}

versions() {
    echo "- ftpdlib: ${FTPDLIB_DESC:-$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?')} (release build)"
    echo "- pyftpdlib: $PYFTPDLIB_VERSION (pip), $("$TOOLS/pyvenv/bin/python" --version 2>&1)"
    echo "- vsftpd: $(dpkg-query -W -f '${Version}' vsftpd 2>/dev/null) (Debian)"
    echo "- proftpd: $(basename "$(ls "$TOOLS"/debs/proftpd-core_*.deb | tail -1)" .deb | cut -d_ -f2) (Debian, unpacked)"
    echo "- pure-ftpd: $(basename "$(ls "$TOOLS"/debs/pure-ftpd_*.deb | tail -1)" .deb | cut -d_ -f2) (Debian, unpacked)"
    if [ -x "$TOOLS/unftp/bin/unftp" ]; then
        echo "- unFTP: $("$TOOLS/unftp/bin/unftp" --version 2>&1 | head -1) (cargo install)"
    fi
}

main() {
    [ -n "${SKIP_INSTALL:-}" ] || install_all
    log "building ftpdlib and ftpbench (release)"
    (cd "$ROOT" && cargo build --release --bin ftpdlib -q)
    BENCH=$(cd "$ROOT" && cargo bench --bench ftpbench --no-run 2>&1 |
            sed -n 's/.*Executable .*(\(.*ftpbench-[0-9a-f]*\)).*/\1/p' | tail -1)
    BENCH="$ROOT/$BENCH"
    [ -x "$BENCH" ] || { echo "compare.sh: ftpbench binary not found" >&2; exit 1; }

    # named before this run writes its results into the tree (which would make it "-dirty")
    FTPDLIB_DESC=${FTPDLIB_DESC:-$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?')}
    mkdir -p "$OUT" "$WORK"
    TSV="$OUT/compare.tsv"
    LOGF="$OUT/compare.log"
    local first_round=1 earlier=""
    if [ -n "${MORE:-}" ] && [ -s "$TSV" ] && [ -s "$OUT/compare.md" ]; then
        local prev
        prev=$(sed -n 's/^- ftpdlib: \(.*\) (release build)$/\1/p' "$OUT/compare.md" | head -1)
        if [ "$prev" != "$FTPDLIB_DESC" ] ||
           ! (cd "$ROOT" && git diff --quiet HEAD -- src ioloop benches/ftpbench Cargo.toml Cargo.lock); then
            echo "compare.sh: MORE=1 adds rounds to results of the same build only (they are of $prev; this is $FTPDLIB_DESC, or its sources changed)" >&2
            exit 1
        fi
        first_round=$(($(grep -c '^### ftpdlib, run ' "$LOGF") + 1))
        earlier=$(sed -n 's/^Run on \(.*\) by .*/\1/p' "$OUT/compare.md" | head -1)
    else
        : >"$TSV"
        : >"$LOGF"
    fi
    LAST_ROUND=$((first_round + REPEAT - 1))
    if [ "$CURL_ROUNDS" -gt 0 ] && [ ! -s "$DATA/curl-1g" ]; then
        head -c 1G /dev/zero >"$DATA/curl-1g"
        chown "$FTP_USER:" "$DATA/curl-1g" 2>/dev/null || true
    fi
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    local t0=$SECONDS name
    # Rounds: every server once per round, so that a slow spell of the machine does not
    # fall on one server's runs only.
    local r
    for r in $(seq "$first_round" "$LAST_ROUND"); do
        for name in $SERVERS; do
            if [ "$name" = unftp ] && [ ! -x "$TOOLS/unftp/bin/unftp" ]; then
                [ "$r" -gt 1 ] || log "unftp: not installed, skipped"
                continue
            fi
            run_server "$name" "$r"
        done
    done
    local took=$((SECONDS - t0))

    local md="$OUT/compare.md"
    {
        echo "# ftpbench: ftpdlib side by side"
        echo
        echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') in ${took} s by \`benches/compare.sh\` (as root)."
        if [ "$first_round" -gt 1 ]; then
            echo "Rounds $first_round to $LAST_ROUND were added (\`MORE=1\`) to rounds 1 to $((first_round - 1)),"
            echo "run on $earlier with the same build."
        fi
        echo
        echo "## Machine"
        echo
        machine
        echo
        echo "## Servers"
        echo
        versions
        echo "- bare-mio: \`ftpbench --bare-server\`, a mio loop that only accepts, greets and"
        echo "  answers USER / PASS / QUIT: the floor for CPU per login and memory per session"
        echo
        echo "All on 127.0.0.1, one user ($FTP_USER), connection limits raised to 20,000,"
        echo "each server's own logging defaults (ftpdlib and pyftpdlib log every login at INFO"
        echo "to a file; vsftpd's xferlog off; proftpd's SystemLog on). vsftpd, proftpd and"
        echo "pure-ftpd log in a system account whose password is MD5-crypt hashed (Debian's"
        echo "default yescrypt costs tens of ms per login on purpose)."
        if [ "${#CG_ARGS[@]}" -gt 0 ]; then
            echo "Server CPU time: the cpuacct cgroup of each server (exact, children included)."
        else
            echo "Server CPU time: /proc/PID/stat of each server's process tree (10 ms ticks)."
        fi
        echo
        echo "## Workloads"
        echo
        echo "\`SIZE=$SIZE CLIENTS=$CLIENTS SECONDS_=$SECONDS_ IDLE_N=$IDLE_N IDLE_N_FORKING=$IDLE_N_FORKING IDLE_N_UNFTP=$IDLE_N_UNFTP INFLIGHT_N=$INFLIGHT_N CURL_ROUNDS=$CURL_ROUNDS LOGIN_ROUNDS=$LOGIN_ROUNDS REPEAT=$LAST_ROUND TIMEOUT=$TIMEOUT LOGIN_TIMEOUT=$LOGIN_TIMEOUT\`"
        echo "For every server (fresh process), with \`-k PID\`:"
        echo
        echo '```'
        echo "ftpbench -b idle-memory -n \$IDLE_N --max-in-flight 32   # \$IDLE_N_FORKING for vsftpd, proftpd, pure-ftpd; \$IDLE_N_UNFTP for unFTP"
        echo "ftpbench -b logins -n \$IDLE_N --login-timeout \$LOGIN_TIMEOUT --rounds R   # all connects at once"
        echo "ftpbench -b logins -n \$INFLIGHT_N --max-in-flight 32 --rounds R"
        echo "ftpbench -b all -n \$CLIENTS -s \$SIZE --seconds \$SECONDS_ --max-in-flight 32 --login-timeout \$LOGIN_TIMEOUT"
        echo "curl -o /dev/null ftp://USER:PASS@127.0.0.1:PORT/curl-1g   # \$CURL_ROUNDS times; a 1 GiB file in the page cache"
        echo '```'
        echo
        echo "R = \$LOGIN_ROUNDS for ftpdlib and the bare loop (their login rows are medians of R"
        echo "bursts, each burst taking milliseconds), 1 for the others (bursts of seconds)."
        echo
        echo "## Results"
        echo
        "$BENCH" --report "$TSV" --svg "$OUT/compare.svg"
        echo
        echo "![chart](compare.svg)"
        echo
        echo "Raw numbers: compare.tsv; every ftpbench output: compare.log."
    } >"$md"
    log "wrote $md, $OUT/compare.svg, $TSV, $LOGF (${took} s)"
    cat "$md"
}

main "$@"
