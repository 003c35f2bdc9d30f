#!/usr/bin/env bash
# A million logged-in sessions on this machine, from ftpbench alone: the release server
# under --concurrency pre-fork, sized from --max-cons (--workers 0: one worker per ~16,000
# sessions under a 20,000 open-files limit), and `ftpbench -b hold --procs 0`, which checks
# the kernel's limits first (it names what to raise and by how much), then logs the
# SESSIONS in from as many client processes as the open-files limit needs, each from its
# own 127.0.0.x source addresses, sampling the login rate and the server's memory; then
# RETRs a FILESIZE file with them held and with none, has 1,000 of them, then all of them,
# answer a NOOP.
#
#   benches/million.sh                       # 1,000,000 sessions, a 1 GiB RETR
#   SESSIONS=100000 benches/million.sh       # a tenth, in about a minute
#
# Writes benches/results/million/: summary.md (the results and the settings), ftpbench.log
# (its whole output), results.tsv (ftpbench --tsv), series.tsv (every SERIES_EVERY seconds:
# sessions logged in, logins/s over the interval, the server's memory) and million.svg
# (the series plotted by benches/million-plot.py).
#
# Knobs (environment): SESSIONS=1000000 FILESIZE=1G PORT=2691 SERIES_EVERY=5
# OUT=benches/results/million FTPDLIB=target/release/ftpdlib (another build to compare); RAISE=1 raises (as root) the sysctls below what the run
# needs: fs.file-max, net.core.somaxconn, net.ipv4.tcp_max_syn_backlog.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${OUT:-$HERE/results/million}
SESSIONS=${SESSIONS:-1000000}
FILESIZE=${FILESIZE:-1G}
PORT=${PORT:-2691}
SERIES_EVERY=${SERIES_EVERY:-5}
FTPDLIB=${FTPDLIB:-$ROOT/target/release/ftpdlib}
FTP_USER=user
FTP_PASS=12345

log() { printf '[million] %s\n' "$*" >&2; }

# The server and every client process hold a descriptor per session: the soft limit up
# to the hard one (raising the hard one needs CAP_SYS_RESOURCE; ftpbench says so if short).
ulimit -n "$(ulimit -Hn)"
if [ "${RAISE:-0}" = 1 ]; then
    raise() { # sysctl minimum
        local now
        now=$(sysctl -n "$1" | awk '{print $1}')
        if [ "$now" -lt "$2" ]; then
            log "raising $1 from $now to $2"
            sysctl -qw "$1=$2"
        fi
    }
    raise fs.file-max $((SESSIONS * 21 / 10 + 100000))
    raise net.core.somaxconn 4096
    raise net.ipv4.tcp_max_syn_backlog 4096
fi

log "building ftpdlib and ftpbench (release)"
(cd "$ROOT" && cargo build --release --bin ftpdlib -q)
BENCH=$(cd "$ROOT" && cargo bench --bench ftpbench --no-run 2>&1 |
        sed -n 's/.*Executable .*(\(.*ftpbench-[0-9a-f]*\)).*/\1/p' | tail -1)
BENCH="$ROOT/$BENCH"
[ -x "$BENCH" ] || { echo "million.sh: ftpbench binary not found" >&2; exit 1; }
DESC=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?')
mkdir -p "$OUT"
rm -f "$OUT/results.tsv" "$OUT/series.tsv"

SERVER_PID=
data=$(mktemp -d)
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
    rm -rf "$data"
}
trap stop_server EXIT

# --max-cons with room for ftpbench's own RETR sessions; --workers 0 sizes pre-fork from
# it; an idle timeout longer than the run (the first sessions wait minutes for the last);
# the listen backlog as deep as somaxconn allows.
MAX_CONS=$((SESSIONS + 1000))
SERVER_CMD=(ftpdlib -w -d "$data" -i 127.0.0.1 -p "$PORT" -u "$FTP_USER" -P "$FTP_PASS"
    --concurrency pre-fork --workers 0 --max-cons "$MAX_CONS" --max-cons-per-ip 0
    --timeout 3600 --backlog 4096)
log "server: ${SERVER_CMD[*]}"
RUST_LOG=warn setsid "$FTPDLIB" "${SERVER_CMD[@]:1}" \
    >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
# Wait for the workers: ftpbench counts them in its check.
sleep 2

BENCH_CMD=(ftpbench -b hold -u "$FTP_USER" -p "$FTP_PASS" -H 127.0.0.1 -P "$PORT"
    -n "$SESSIONS" -s "$FILESIZE" -k "$SERVER_PID" --procs 0 --timeout 120
    --series-every "$SERIES_EVERY")
log "client: ${BENCH_CMD[*]}"
status=0
{
    echo "# $(date -u +%FT%TZ), $DESC, $(nproc) CPUs, $(free -g | awk '/^Mem:/{print $2}') GiB, Linux $(uname -r)"
    "$BENCH" "${BENCH_CMD[@]:1}" --series "$OUT/series.tsv" --tsv "$OUT/results.tsv" \
        --label ftpdlib 2>&1
} | tee "$OUT/ftpbench.log" || status=1
stop_server

{
    echo "# $SESSIONS logged-in sessions on one machine"
    echo
    echo "$(date -u +%F), build $DESC; $(nproc) CPUs, $(free -g | awk '/^Mem:/{print $2}') GiB," \
        "Linux $(uname -r); server and clients on the same machine (loopback)."
    echo
    echo "Server: \`${SERVER_CMD[*]}\`"
    echo
    echo "Client: \`${BENCH_CMD[*]}\` (\`benches/million.sh\`)"
    echo
    echo '```text'
    grep -v '^\[' "$OUT/ftpbench.log" | grep -v 'server CPU/GiB' || true
    echo '```'
    echo
    echo 'The login rate over time (series.tsv) and the server memory: million.svg.'
} >"$OUT/summary.md"
python3 "$HERE/million-plot.py" "$OUT" || log "plot failed"
log "results in $OUT"
exit "$status"
