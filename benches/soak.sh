#!/usr/bin/env bash
# The soak: the release server under each concurrency model for DURATION seconds with HELD
# sessions held (a NOOP a minute each), CHURN sessions a second connecting, logging in and
# QUITting, and TRANSFERS clients RETRing and STORing a FILESIZE file in a loop, all driven
# by ftpbench (-b soak). Every 10 s ftpbench samples the server's RSS and descriptors
# (summed over its processes) and its loops' handlers and timers (the lines the server logs
# with RUST_LOG=ftpdlib::loop_stats=debug); after WARMUP seconds each series must stay
# within 5 % of its median, with zero errors, or the model FAILs.
#
#   benches/soak.sh                  # async, then pre-fork: about 2 x 10 minutes
#   DURATION=60 benches/soak.sh async
#
# Writes benches/results/soak/: MODEL.tsv (the samples), MODEL.log (ftpbench's output,
# ending in PASS or FAIL), MODEL.server.log (the server's log), soak.svg (the plot, by
# benches/soak-plot.py) and soak.md (the table). Exits non-zero if a model FAILs.
#
# Knobs (environment): DURATION=600 HELD=10000 CHURN=1000 TRANSFERS=4 FILESIZE=10M
# WARMUP=60 PORT=2631 OUT=benches/results/soak.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${OUT:-$HERE/results/soak}
DURATION=${DURATION:-600}
HELD=${HELD:-10000}
CHURN=${CHURN:-1000}
TRANSFERS=${TRANSFERS:-4}
FILESIZE=${FILESIZE:-10M}
WARMUP=${WARMUP:-60}
PORT=${PORT:-2631}
MODELS=${*:-async pre-fork}
FTP_USER=user
FTP_PASS=12345

log() { printf '[soak] %s\n' "$*" >&2; }

# Each held session is a descriptor in the server and one in ftpbench; the churn and the
# transfers add a few hundred more.
ulimit -n "$(ulimit -Hn)"
need=$((HELD + CHURN + 500))
if [ "$(ulimit -n)" -lt "$need" ]; then
    echo "soak.sh: the open-files limit $(ulimit -n) is below the $need needed" >&2
    exit 1
fi
# The churn's QUITs leave each a server-side TIME_WAIT for a minute; ftpbench spreads its
# connections over 127.0.0.x source addresses, each with this range of ports.
log "open files $(ulimit -n); net.ipv4.ip_local_port_range: $(cat /proc/sys/net/ipv4/ip_local_port_range)"

log "building ftpdlib and ftpbench (release)"
(cd "$ROOT" && cargo build --release --bin ftpdlib -q)
BENCH=$(cd "$ROOT" && cargo bench --bench ftpbench --no-run 2>&1 |
        sed -n 's/.*Executable .*(\(.*ftpbench-[0-9a-f]*\)).*/\1/p' | tail -1)
BENCH="$ROOT/$BENCH"
[ -x "$BENCH" ] || { echo "soak.sh: ftpbench binary not found" >&2; exit 1; }
# The build measured, named once: the tree may change while the models run.
DESC=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?')
mkdir -p "$OUT"

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

failed=0
for model in $MODELS; do
    data=$(mktemp -d)
    slog="$OUT/$model.server.log"
    log "$model: $HELD held, $CHURN/s churn, $TRANSFERS transfers of $FILESIZE, ${DURATION}s"
    # warn: without the per-session info lines (thousands a second), but with the loop's
    # counts.
    RUST_LOG=warn,ftpdlib::loop_stats=debug setsid "$ROOT/target/release/ftpdlib" \
        -w -d "$data" -i 127.0.0.1 -p "$PORT" -u "$FTP_USER" -P "$FTP_PASS" \
        --max-cons 20000 --max-cons-per-ip 0 --concurrency "$model" >"$slog" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    {
        echo "# $model, $(date -u +%FT%TZ), $DESC, $(nproc) CPUs shared with other work"
        "$BENCH" -b soak -u "$FTP_USER" -p "$FTP_PASS" -H 127.0.0.1 -P "$PORT" \
            -k "$SERVER_PID" -n "$HELD" --churn "$CHURN" --transfers "$TRANSFERS" \
            -s "$FILESIZE" --duration "$DURATION" --warmup "$WARMUP" --max-in-flight 200 \
            --source-ips 64 --server-log "$slog" --samples "$OUT/$model.tsv" 2>&1
    } | tee "$OUT/$model.log" || failed=1
    stop_server
    rm -rf "$data"
    # The next model's clients must not meet this one's TIME_WAITs on the same port.
    PORT=$((PORT + 1))
done

python3 "$HERE/soak-plot.py" "$OUT" "$WARMUP" || log "plot failed"
exit "$failed"
