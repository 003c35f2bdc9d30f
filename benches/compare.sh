#!/usr/bin/env bash
# ftpdlib side by side with pyftpdlib 2.2.0, vsftpd, proftpd, pure-ftpd and unFTP (plus a bare
# mio loop that only logs clients in: the floor for CPU per login and memory per session), all
# on loopback ports of this machine, driven by the same ftpbench (benches/ftpbench/) in one run.
#
#   sudo benches/compare.sh            # as root: installs what is missing, runs, writes results
#
# Writes benches/results/compare.md (machine, commands, one table with ratios to ftpdlib),
# compare.svg (bar chart), compare.tsv (raw numbers) and compare.log (every ftpbench output);
# then the FTPS pass (explicit FTPS, AUTH TLS + PROT P, every server with the same
# self-signed certificate; the bare loop does not speak TLS) writes the same four files as
# compare-ftps.*.
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
#   SERVERS="ftpdlib ftpdlib-loops pyftpdlib vsftpd proftpd pure-ftpd unftp bare"   which to run
#                     (ftpdlib first); ftpdlib-loops is ftpdlib with one event loop per core
#                     (--concurrency multi-loop --workers 0), run for the N-concurrent
#                     workload only: the forking servers spread their sessions over every core
#   REPEAT=1          rounds: every server runs every workload once per round (the table
#                     shows medians over the rounds)
#   MORE=1            adds REPEAT rounds to the results already in OUT instead of starting
#                     over (same build only: its commit, and no uncommitted change to the
#                     sources); the table then covers all the rounds
#   TIMEOUT=300       bound on every ftpbench phase, seconds
#   LOGIN_TIMEOUT=20  bound on the all-at-once logins (a burst beyond a server's listen queue
#                     can leave clients connected but never greeted: they count as not done)
#   PASSES="plain ftps"   which passes to run, in this order
#   IDLE_N_FTPS=1000,10000         idle memory per TLS session (event-loop servers)
#   IDLE_N_FTPS_FORKING=300,1000   the same for the forking servers
#   IDLE_N_FTPS_UNFTP=1000,5000    the same for unFTP
#   CERT_KEY=ec       the certificate's key: ec (P-256, what certbot makes by default) or rsa
#                     (2048 bits)
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
SERVERS=${SERVERS:-"ftpdlib ftpdlib-loops pyftpdlib vsftpd proftpd pure-ftpd unftp bare"}
PASSES=${PASSES:-"plain ftps"}
IDLE_N_FTPS=${IDLE_N_FTPS:-1000,10000}
IDLE_N_FTPS_FORKING=${IDLE_N_FTPS_FORKING:-300,1000}
IDLE_N_FTPS_UNFTP=${IDLE_N_FTPS_UNFTP:-1000,5000}
CERT_KEY=${CERT_KEY:-ec}
REPEAT=${REPEAT:-1}
TIMEOUT=${TIMEOUT:-300}
LOGIN_TIMEOUT=${LOGIN_TIMEOUT:-20}
PYFTPDLIB_VERSION=2.2.0

declare -A PORT=([ftpdlib]=2621 [pyftpdlib]=2622 [vsftpd]=2623 [proftpd]=2624
                 [pure-ftpd]=2625 [unftp]=2626 [bare]=2627 [ftpdlib-loops]=2628)
declare -A LABEL=([bare]="bare-mio")
STARTED_PIDS=()
# exact server CPU time (exited children included): each server in its own cpuacct cgroup
CG_ROOT=/sys/fs/cgroup/cpuacct/ftpbench
CG_ARGS=()
FTPS=         # set during the FTPS pass
CERT=$WORK/ftps/cert.pem
KEY=$WORK/ftps/key.pem

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
    if ! "$TOOLS/pyvenv/bin/python" -c "import OpenSSL" 2>/dev/null; then
        log "pip: pyopenssl (pyftpdlib's FTPS)"
        "$TOOLS/pyvenv/bin/pip" install -q pyopenssl
    fi

    # vsftpd, proftpd-core and pure-ftpd conflict as packages (ftp-server): vsftpd with apt,
    # the other two unpacked into $TOOLS with their libraries installed from apt.
    local need_apt=
    command -v /usr/sbin/vsftpd >/dev/null || need_apt=1
    command -v curl >/dev/null || need_apt=1
    [ -x "$TOOLS/proftpd/usr/sbin/proftpd" ] || need_apt=1
    [ -e "$TOOLS/proftpd/usr/lib/proftpd/mod_tls.so" ] || need_apt=1
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
        # proftpd's mod_tls is in proftpd-mod-crypto
        (cd "$TOOLS/debs" && apt-get download -qq proftpd-core proftpd-mod-crypto pure-ftpd 2>/dev/null)
        rm -rf "$TOOLS/proftpd" "$TOOLS/pureftpd"
        dpkg-deb -x "$(ls "$TOOLS"/debs/proftpd-core_*.deb | tail -1)" "$TOOLS/proftpd"
        dpkg-deb -x "$(ls "$TOOLS"/debs/proftpd-mod-crypto_*.deb | tail -1)" "$TOOLS/proftpd"
        dpkg-deb -x "$(ls "$TOOLS"/debs/pure-ftpd_*.deb | tail -1)" "$TOOLS/pureftpd"
    fi
    mkdir -p /var/run/vsftpd/empty

    if [ ! -x "$TOOLS/unftp/bin/unftp" ]; then
        log "cargo install unftp (minutes; half an hour on a busy 2-core machine)"
        # a build directory that survives a failed or interrupted attempt: the next one
        # goes on from there
        if ! CARGO_TARGET_DIR="$TOOLS/unftp-build" timeout 3600 \
                cargo install --locked --root "$TOOLS/unftp" unftp >"$WORK/unftp-install.log" 2>&1; then
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
    # FTPS: each server's explicit FTPS (AUTH TLS), otherwise with its defaults: TLS
    # allowed, not required; vsftpd and proftpd require data connections to resume the
    # control connection's session, as they do by default
    local tls_args=()
    case $name in
    ftpdlib | ftpdlib-loops | pyftpdlib) [ -z "$FTPS" ] || tls_args=(--tls --certfile "$CERT" --keyfile "$KEY") ;;
    pure-ftpd) [ -z "$FTPS" ] || tls_args=(-Y 1 -2 "$CERT,$KEY") ;;
    unftp) [ -z "$FTPS" ] || tls_args=(--ftps-certs-file "$CERT" --ftps-key-file "$KEY") ;;
    esac
    case $name in
    ftpdlib)
        setsid "$ROOT/target/release/ftpdlib" -w -d "$DATA" -i 127.0.0.1 -p "$port" \
            -u "$FTP_USER" -P "$FTP_PASS" --max-cons 20000 --max-cons-per-ip 0 \
            "${tls_args[@]}" >"$logf" 2>&1 &
        ;;
    ftpdlib-loops)
        setsid "$ROOT/target/release/ftpdlib" -w -d "$DATA" -i 127.0.0.1 -p "$port" \
            -u "$FTP_USER" -P "$FTP_PASS" --max-cons 20000 --max-cons-per-ip 0 \
            --concurrency multi-loop --workers 0 "${tls_args[@]}" >"$logf" 2>&1 &
        ;;
    pyftpdlib)
        setsid "$TOOLS/pyvenv/bin/python" -m pyftpdlib -w -d "$DATA" -i 127.0.0.1 -p "$port" \
            -u "$FTP_USER" -P "$FTP_PASS" --max-cons 20000 --max-cons-per-ip 0 \
            "${tls_args[@]}" >"$logf" 2>&1 &
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
        if [ -n "$FTPS" ]; then
            cat >>"$WORK/vsftpd.conf" <<EOF
ssl_enable=YES
rsa_cert_file=$CERT
rsa_private_key_file=$KEY
ssl_ciphers=HIGH
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=YES
force_local_logins_ssl=NO
force_local_data_ssl=NO
allow_anon_ssl=NO
EOF
        fi
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
        if [ -n "$FTPS" ]; then
            local cert_kind=RSA
            [ "$CERT_KEY" = rsa ] || cert_kind=EC
            cat >>"$WORK/proftpd.conf" <<EOF
ModulePath $TOOLS/proftpd/usr/lib/proftpd
LoadModule mod_tls.c
<IfModule mod_tls.c>
  TLSEngine on
  TLSProtocol TLSv1.2 TLSv1.3
  TLS${cert_kind}CertificateFile $CERT
  TLS${cert_kind}CertificateKeyFile $KEY
  TLSVerifyClient off
  TLSRequired off
</IfModule>
EOF
        fi
        setsid "$TOOLS/proftpd/usr/sbin/proftpd" -n -c "$WORK/proftpd.conf" >>"$logf" 2>&1 &
        ;;
    pure-ftpd)
        setsid "$TOOLS/pureftpd/usr/sbin/pure-ftpd" -S "127.0.0.1,$port" -l unix -E -H \
            -c 20000 -C 20000 -I 600 "${tls_args[@]}" >"$logf" 2>&1 &
        ;;
    unftp)
        printf '[{"username": "%s", "password": "%s"}]\n' "$FTP_USER" "$FTP_PASS" >"$WORK/unftp-users.json"
        setsid "$TOOLS/unftp/bin/unftp" --bind-address "127.0.0.1:$port" --root-dir "$DATA" \
            --auth-type json --auth-json-path "$WORK/unftp-users.json" \
            --passive-ports 61000-65000 --idle-session-timeout 600 "${tls_args[@]}" >"$logf" 2>&1 &
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
               --tsv "$TSV" --label "$label" -t "$TIMEOUT" ${FTPS:+-S} "$@")
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
# (bytes over the whole transfer, login included) and the server's CPU per GiB. In the FTPS
# pass (curl --ssl-reqd: AUTH TLS, PROT P), the same for a STOR of that file.
curl_retr() { # name label pid port
    local name=$1 label=$2 pid=$3 port=$4 i cpu0 cpu1 speed dir what
    local tls=()
    [ -z "$FTPS" ] || tls=(--ssl-reqd --insecure)
    [ "$CURL_ROUNDS" -gt 0 ] || return 0
    # The workloads before wrote gigabytes: flush them, so that writeback does not run
    # during the downloads, and read the file back into the page cache they may have
    # pushed it out of.
    sync
    cat "$DATA/curl-1g" >/dev/null
    for i in $(seq 1 "$CURL_ROUNDS"); do
        for dir in ${FTPS:+STOR} RETR; do
            what="$dir by curl (1 GiB)"
            local url="ftp://$FTP_USER:$FTP_PASS@127.0.0.1:$port/curl-1g" args=(-o /dev/null) out=speed_download
            if [ "$dir" = STOR ]; then
                url="ftp://$FTP_USER:$FTP_PASS@127.0.0.1:$port/curl-up"
                args=(-T "$DATA/curl-1g")
                out=speed_upload
            fi
            cpu0=$(server_cpu "$name" "$pid")
            printf '\n$ curl %s %s %s\n' "${tls[*]}" "${args[*]}" "${url/:$FTP_PASS@/@}" >>"$LOGF"
            if ! speed=$(curl -sS "${tls[@]}" "${args[@]}" --max-time "$TIMEOUT" -w "%{$out}" \
                    "$url" 2>>"$LOGF"); then
                log "$label: curl $dir failed (see $LOGF)"
                continue
            fi
            cpu1=$(server_cpu "$name" "$pid")
            awk -v l="$label" -v w="$what" -v s="$speed" -v c0="$cpu0" -v c1="$cpu1" 'BEGIN {
                printf "%s\t%s\t%.6f\tMB/sec\t\t%.3f\t\n", l, w, s / 1e6, c1 - c0
                printf "%s\t%s: server CPU/GiB\t%.6f\tsecs\t\t\t\n", l, w, c1 - c0
            }' | tee -a "$TSV" | cut -f2-4 | head -1 | tee -a "$LOGF"
            if [ "$dir" = STOR ]; then
                # written back now, not during the RETR that follows
                sync
            fi
        done
    done
    rm -f "$DATA/curl-up"
}

# One run of every workload against one server, started fresh for it.
run_server() { # name run
    local name=$1 r=$2 label=${LABEL[$1]:-$1} port=${PORT[$1]} pid n_idle=$IDLE_N
    case $name in
    vsftpd | proftpd | pure-ftpd) n_idle=$IDLE_N_FORKING ;;
    unftp) n_idle=$IDLE_N_UNFTP ;;
    esac
    if [ -n "$FTPS" ]; then
        n_idle=$IDLE_N_FTPS
        case $name in
        vsftpd | proftpd | pure-ftpd) n_idle=$IDLE_N_FTPS_FORKING ;;
        unftp) n_idle=$IDLE_N_FTPS_UNFTP ;;
        esac
    fi
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
        if [ "$name" = ftpdlib-loops ]; then
            ftpbench "$label" "$pid" -P "$port" -b concurrence -n "$CLIENTS" -s "$SIZE" \
                --max-in-flight 32 --login-timeout "$LOGIN_TIMEOUT"
            stop_server "$pid"
            return 0
        fi
        ftpbench "$label" "$pid" -P "$port" -b idle-memory -n "$n_idle" --max-in-flight 32
        if [ -n "$FTPS" ]; then
            # a full TLS handshake per login, then logins that resume earlier sessions
            ftpbench "$label" "$pid" -P "$port" -b logins -n "$INFLIGHT_N" --max-in-flight 32 \
                --rounds "$login_rounds"
            ftpbench "$label" "$pid" -P "$port" -b logins -n "$INFLIGHT_N" --max-in-flight 32 \
                --rounds "$login_rounds" --tls-resume
        else
            ftpbench "$label" "$pid" -P "$port" -b logins -n "$n_idle" --login-timeout "$LOGIN_TIMEOUT" \
                --rounds "$login_rounds"
            ftpbench "$label" "$pid" -P "$port" -b logins -n "$INFLIGHT_N" --max-in-flight 32 \
                --rounds "$login_rounds"
        fi
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
    if [ -n "$FTPS" ]; then
        echo "- clients: ftpbench on rustls $(sed -n '/^name = "rustls"$/{n;s/^version = "\(.*\)"/\1/p;}' "$ROOT/Cargo.lock" | head -1) (ring),"
        echo "  $(curl --version | head -1 | cut -d' ' -f1-2,5) ($(openssl version | cut -d' ' -f1-2) here)"
    fi
}

# The certificate of the FTPS pass: self-signed, for 127.0.0.1 and localhost, one for all.
make_cert() {
    mkdir -p "$WORK/ftps"
    [ -s "$CERT" ] && [ -s "$KEY" ] && [ "$(cat "$WORK/ftps/kind" 2>/dev/null)" = "$CERT_KEY" ] && return 0
    local newkey
    case $CERT_KEY in
    ec) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) newkey=(-newkey rsa:2048) ;;
    *) echo "compare.sh: CERT_KEY is ec or rsa, not $CERT_KEY" >&2; exit 1 ;;
    esac
    openssl req -x509 "${newkey[@]}" -nodes -days 3650 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$KEY" -out "$CERT" 2>/dev/null
    chmod 600 "$KEY"
    echo "$CERT_KEY" >"$WORK/ftps/kind"
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
    if [ "$CURL_ROUNDS" -gt 0 ] && [ ! -s "$DATA/curl-1g" ]; then
        head -c 1G /dev/zero >"$DATA/curl-1g"
        chown "$FTP_USER:" "$DATA/curl-1g" 2>/dev/null || true
    fi
    local pass
    for pass in $PASSES; do
        case $pass in
        plain) FTPS= run_pass compare ;;
        ftps) make_cert && FTPS=1 run_pass compare-ftps ;;
        *) echo "compare.sh: PASSES holds plain and ftps, not $pass" >&2; exit 1 ;;
        esac
    done
}

# One pass: every server in every round, then the report. $FTPS says which pass.
run_pass() { # base name of the result files
    local base=$1
    TSV="$OUT/$base.tsv"
    LOGF="$OUT/$base.log"
    local md="$OUT/$base.md"
    local first_round=1 earlier=""
    if [ -n "${MORE:-}" ] && [ -s "$TSV" ] && [ -s "$md" ]; then
        local prev
        prev=$(sed -n 's/^- ftpdlib: \(.*\) (release build)$/\1/p' "$md" | head -1)
        if [ "$prev" != "$FTPDLIB_DESC" ] ||
           ! (cd "$ROOT" && git diff --quiet HEAD -- src ioloop benches/ftpbench Cargo.toml Cargo.lock); then
            echo "compare.sh: MORE=1 adds rounds to results of the same build only (they are of $prev; this is $FTPDLIB_DESC, or its sources changed)" >&2
            exit 1
        fi
        first_round=$(($(grep -c '^### ftpdlib, run ' "$LOGF") + 1))
        earlier=$(sed -n 's/^Run on \(.*\) by .*/\1/p' "$md" | head -1)
    else
        : >"$TSV"
        : >"$LOGF"
    fi
    LAST_ROUND=$((first_round + REPEAT - 1))
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
            # the bare loop speaks no TLS
            [ -z "$FTPS" ] || [ "$name" != bare ] || continue
            run_server "$name" "$r"
        done
    done
    local took=$((SECONDS - t0))

    {
        if [ -n "$FTPS" ]; then
            echo "# ftpbench: ftpdlib side by side, FTPS"
        else
            echo "# ftpbench: ftpdlib side by side"
        fi
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
        if [ -z "$FTPS" ]; then
            echo "- bare-mio: \`ftpbench --bare-server\`, a mio loop that only accepts, greets and"
            echo "  answers USER / PASS / QUIT: the floor for CPU per login and memory per session"
        fi
        echo "- ftpdlib-loops: the same ftpdlib build with \`--concurrency multi-loop --workers 0\`"
        echo "  (one event loop per core), for the N-concurrent rows only: vsftpd, proftpd and"
        echo "  pure-ftpd run a process per session, which spread over every core; ftpdlib's"
        echo "  default, like pyftpdlib's, is one loop on one core"
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
        if [ -n "$FTPS" ]; then
            echo
            echo "FTPS: explicit (AUTH TLS, then PBSZ 0 and PROT P: control and data encrypted),"
            echo "every server with the same self-signed certificate ($(cert_desc)) and its own"
            echo "TLS defaults otherwise: ftpdlib and pyftpdlib \`--tls --certfile --keyfile\`;"
            echo "vsftpd \`ssl_enable=YES\` (its default \`require_ssl_reuse=YES\`: a data connection"
            echo "must resume the control connection's session), \`ssl_ciphers=HIGH\`; proftpd mod_tls"
            echo "(\`TLSEngine on\`, \`TLSProtocol TLSv1.2 TLSv1.3\`); pure-ftpd \`-Y 1 -2 CERT,KEY\`;"
            echo "unFTP \`--ftps-certs-file --ftps-key-file\`. The client is rustls (ftpbench) or"
            echo "OpenSSL (curl); the version each pair agreed on is in $base.log (\`-d\` shows it)."
        fi
        echo
        echo "## Workloads"
        echo
        if [ -n "$FTPS" ]; then
            echo "\`SIZE=$SIZE CLIENTS=$CLIENTS SECONDS_=$SECONDS_ IDLE_N_FTPS=$IDLE_N_FTPS IDLE_N_FTPS_FORKING=$IDLE_N_FTPS_FORKING IDLE_N_FTPS_UNFTP=$IDLE_N_FTPS_UNFTP INFLIGHT_N=$INFLIGHT_N CURL_ROUNDS=$CURL_ROUNDS LOGIN_ROUNDS=$LOGIN_ROUNDS REPEAT=$LAST_ROUND TIMEOUT=$TIMEOUT LOGIN_TIMEOUT=$LOGIN_TIMEOUT CERT_KEY=$CERT_KEY\`"
            echo "For every server (fresh process), with \`-k PID\`:"
            echo
            echo '```'
            echo "ftpbench -S -b idle-memory -n \$IDLE_N_FTPS --max-in-flight 32   # \$IDLE_N_FTPS_FORKING for vsftpd, proftpd, pure-ftpd; \$IDLE_N_FTPS_UNFTP for unFTP"
            echo "ftpbench -S -b logins -n \$INFLIGHT_N --max-in-flight 32 --rounds R                # a full TLS handshake per login"
            echo "ftpbench -S -b logins -n \$INFLIGHT_N --max-in-flight 32 --rounds R --tls-resume   # each resumes an earlier session"
            echo "ftpbench -S -b all -n \$CLIENTS -s \$SIZE --seconds \$SECONDS_ --max-in-flight 32 --login-timeout \$LOGIN_TIMEOUT"
            echo "curl --ssl-reqd --insecure -T curl-1g ftp://USER:PASS@127.0.0.1:PORT/curl-up    # \$CURL_ROUNDS times each,"
            echo "curl --ssl-reqd --insecure -o /dev/null ftp://USER:PASS@127.0.0.1:PORT/curl-1g  # a 1 GiB file in the page cache"
            echo '```'
            echo
            echo "With \`--tls-resume\`, one unmeasured burst of \$INFLIGHT_N logins first leaves a"
            echo "session for each in the client's pool; the row \"TLS handshakes resumed\" says how"
            echo "many the server did resume (a forking server whose processes do not share their"
            echo "ticket keys resumes none). Data connections resume their control connection's"
            echo "session in every workload."
        else
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
        fi
        echo
        echo "R = \$LOGIN_ROUNDS for ftpdlib and the bare loop (their login rows are medians of R"
        echo "bursts, each burst taking milliseconds), 1 for the others (bursts of seconds)."
        echo
        echo "## Results"
        echo
        "$BENCH" --report "$TSV" --svg "$OUT/$base.svg"
        echo
        echo "![chart]($base.svg)"
        echo
        echo "Raw numbers: $base.tsv; every ftpbench output: $base.log."
    } >"$md"
    log "wrote $md, $OUT/$base.svg, $TSV, $LOGF (${took} s)"
    cat "$md"
}

# The FTPS certificate's key and signature, for the report.
cert_desc() {
    openssl x509 -in "$CERT" -noout -text 2>/dev/null |
        sed -n 's/^ *\(Public Key Algorithm\|Signature Algorithm\): *//p' | head -2 | paste -sd, -
}

main "$@"
