#!/usr/bin/env bash
# The PROXY protocol header's cost per login: ftpbench's `logins` workload against one
# ftpdlib instance reached three ways, in alternating rounds, reporting the instance's
# CPU per login (medians):
#
#   direct    client -> ftpdlib
#   haproxy   client -> HAProxy (TCP mode, no header) -> ftpdlib
#   proxy-v2  client -> HAProxy (send-proxy-v2) -> ftpdlib --proxy-protocol-from
#
# "haproxy" against "proxy-v2" isolates the header: same path, same balancer, the only
# difference is the header the instance reads and checks.
#
#   benches/proxy-header.sh                  # needs haproxy; builds the release binaries
#
# Knobs (environment): N=3000 (logins per burst), BURSTS=5 (ftpbench --rounds: bursts per
# run, reported as medians), REPEAT=3 (rounds of the three ways), FTPDLIB / FTPBENCH (use
# these binaries instead of building), PORT_BASE=24021 (instance port; HAProxy listens on
# PORT_BASE+1 and +2 on 127.0.0.10), OUT (a folder to keep the raw figures and logs in).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
N=${N:-3000}
BURSTS=${BURSTS:-5}
REPEAT=${REPEAT:-3}
PORT_BASE=${PORT_BASE:-24021}
if [ -z "${FTPDLIB:-}" ] || [ -z "${FTPBENCH:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin ftpdlib && cargo bench --bench ftpbench --no-run)
  FTPDLIB=${FTPDLIB:-$ROOT/target/release/ftpdlib}
  FTPBENCH=${FTPBENCH:-$(ls -t "$ROOT"/target/release/deps/ftpbench-* | grep -v '\.d$' | head -1)}
fi
command -v haproxy >/dev/null || { echo "haproxy is not installed" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$WORK"/*.tsv "$WORK"/*.log "$OUT"/ 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/share"

# Two instances on one address, so that each way has its own: plain, and proxied.
"$FTPDLIB" -i 127.0.0.11 -p "$PORT_BASE" -u user -P 12345 -d "$WORK/share" \
  --max-cons 20000 2>"$WORK/plain.log" &
PLAIN=$!; PIDS+=("$PLAIN")
"$FTPDLIB" -i 127.0.0.12 -p "$PORT_BASE" -u user -P 12345 -d "$WORK/share" \
  --max-cons 20000 --proxy-protocol-from 127.0.0.10 2>"$WORK/proxied.log" &
PROXIED=$!; PIDS+=("$PROXIED")

cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $((N + 100))
defaults
    mode tcp
    source 127.0.0.10
    timeout connect 5s
    timeout client 1m
    timeout server 1m
listen plain
    bind 127.0.0.10:$((PORT_BASE + 1))
    server ftp 127.0.0.11:$PORT_BASE
listen proxied
    bind 127.0.0.10:$((PORT_BASE + 2))
    server ftp 127.0.0.12:$PORT_BASE send-proxy-v2
EOF
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=("$!")
sleep 1

# The server's CPU time in nanoseconds, all threads (schedstat: ftpbench's own figure is
# in clock ticks, 10 ms, too coarse for a difference of a microsecond per login).
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'
}
bench() { # label host port pid
  local before after
  before=$(cpu_ns "$4")
  "$FTPBENCH" -H "$2" -P "$3" -u user -p 12345 -b logins -n "$N" --rounds "$BURSTS" \
    -k "$4" --tsv "$WORK/results.tsv" --label "$1" >>"$WORK/ftpbench.log" 2>&1
  after=$(cpu_ns "$4")
  printf '%s\t%s\n' "$1" "$(( (after - before) / (N * BURSTS) ))" >>"$WORK/cpu.tsv"
}
for round in $(seq "$REPEAT"); do
  bench direct 127.0.0.11 "$PORT_BASE" "$PLAIN"
  bench haproxy 127.0.0.10 $((PORT_BASE + 1)) "$PLAIN"
  bench proxy-v2 127.0.0.10 $((PORT_BASE + 2)) "$PROXIED"
  echo "round $round done" >&2
done

grep -h "failed" "$WORK/results.tsv" >&2 || true
echo "server CPU per login (ns, schedstat), medians of $REPEAT runs of $BURSTS bursts of $N logins:"
for label in direct haproxy proxy-v2; do
  awk -F'\t' -v l="$label" '$1 == l { print $2 }' "$WORK/cpu.tsv" | sort -n |
    awk -v l="$label" '{ v[NR] = $1 } END { printf "%-9s %8.0f   (runs: ", l, v[int((NR + 1) / 2)];
      for (i = 1; i <= NR; i++) printf "%s%.0f", (i > 1 ? " " : ""), v[i]; print ")" }'
done
