#!/usr/bin/env bash
# Server CPU per FTPS login, side by side: ftpdlib builds (e.g. the one before a change and
# the one after) and unFTP, each a server of its own, in alternating rounds; each round runs
# per server ftpbench's `logins` workload (AUTH TLS, USER, PASS, PBSZ 0, PROT P) with a
# full handshake, with --tls-resume (control connections resuming earlier sessions), with
# TLS12=1 both again from a client that offers TLS 1.2 only (ftpbench --tls12), and with
# PLAIN=1 over plain FTP. ftpbench reports the median of its bursts; this script the
# median of the rounds. Server CPU is utime + stime of /proc/PID/stat (clock ticks: 10 µs
# per login over 1,000), or with CGROUP=1 a cgroup v1 cpuacct folder per server (ns).
#
#   benches/ftps-logins.sh before=/tmp/ftpdlib-main after=target/release/ftpdlib unftp
#
# A label=binary argument is an ftpdlib binary started as compare.sh starts it (--tls with
# the certificate below); `unftp` is /opt/ftpbench/unftp/bin/unftp (compare.sh's install)
# with its FTPS flags. Knobs (environment): ROUNDS=7, N=1000 (logins per burst), BURSTS=3
# (ftpbench --rounds), INFLIGHT=32, PLAIN=, TLS12=, CERT / KEY
# (/tmp/ftpbench/ftps/{cert,key}.pem, compare.sh's), CGROUP=, FTPBENCH (else built), UNFTP,
# PORT_BASE=24121, OUT (a folder to keep the per-round figures in).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ROUNDS=${ROUNDS:-7}
N=${N:-1000}
BURSTS=${BURSTS:-3}
INFLIGHT=${INFLIGHT:-32}
PLAIN=${PLAIN:-}
TLS12=${TLS12:-}
CERT=${CERT:-/tmp/ftpbench/ftps/cert.pem}
KEY=${KEY:-/tmp/ftpbench/ftps/key.pem}
UNFTP=${UNFTP:-/opt/ftpbench/unftp/bin/unftp}
PORT_BASE=${PORT_BASE:-24121}
[ $# -gt 0 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
[ -s "$CERT" ] && [ -s "$KEY" ] || { echo "no certificate at $CERT / $KEY (compare.sh makes one)" >&2; exit 2; }
if [ -z "${FTPBENCH:-}" ]; then
  (cd "$ROOT" && cargo bench --bench ftpbench --no-run)
  FTPBENCH=$(ls -t "$ROOT"/target/release/deps/ftpbench-* | grep -v '\.d$' | head -1)
fi

WORK=$(mktemp -d)
declare -A PID PORT CG
LABELS=()
CG_ROOT=/sys/fs/cgroup/cpuacct/ftps-logins.$$
cleanup() {
  for label in "${LABELS[@]}"; do kill "${PID[$label]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rmdir "$CG_ROOT"/* "$CG_ROOT" 2>/dev/null || true
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$WORK"/* "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/share"

port=$PORT_BASE
for spec in "$@"; do
  label=${spec%%=*}
  LABELS+=("$label")
  PORT[$label]=$port
  if [ "$spec" = unftp ]; then
    printf '[{"username": "user", "password": "12345"}]\n' >"$WORK/unftp-users.json"
    "$UNFTP" --bind-address "127.0.0.1:$port" --root-dir "$WORK/share" --auth-type json \
      --auth-json-path "$WORK/unftp-users.json" --passive-ports 61000-65000 \
      --idle-session-timeout 600 --ftps-certs-file "$CERT" --ftps-key-file "$KEY" \
      >"$WORK/$label.log" 2>&1 &
  else
    "${spec#*=}" -w -d "$WORK/share" -i 127.0.0.1 -p "$port" -u user -P 12345 \
      --max-cons 20000 --max-cons-per-ip 0 --tls --certfile "$CERT" --keyfile "$KEY" \
      >"$WORK/$label.log" 2>&1 &
  fi
  PID[$label]=$!
  CG[$label]=
  if [ -n "${CGROUP:-}" ] && mkdir -p "$CG_ROOT/$label" &&
     echo "${PID[$label]}" >"$CG_ROOT/$label/cgroup.procs"; then
    CG[$label]="--cgroup $CG_ROOT/$label"
  fi
  port=$((port + 1))
done
sleep 1

MODES="full resumed${TLS12:+ full-1.2 resumed-1.2}${PLAIN:+ plain}"
for r in $(seq 1 "$ROUNDS"); do
  order=("${LABELS[@]}")
  if [ $((r % 2)) = 0 ]; then
    order=(); for ((i = ${#LABELS[@]} - 1; i >= 0; i--)); do order+=("${LABELS[$i]}"); done
  fi
  for label in "${order[@]}"; do
    for mode in $MODES; do
      case $mode in
      full) args=(-S) ;;
      resumed) args=(-S --tls-resume) ;;
      full-1.2) args=(-S --tls12) ;;
      resumed-1.2) args=(-S --tls-resume --tls12) ;;
      plain) args=() ;;
      esac
      us=$("$FTPBENCH" -u user -p 12345 -P "${PORT[$label]}" -k "${PID[$label]}" ${CG[$label]} "${args[@]}" \
             -b logins -n "$N" --max-in-flight "$INFLIGHT" --rounds "$BURSTS" 2>>"$WORK/errors.log" |
           awk '/server CPU per login/ {print $(NF-1)}')
      echo "$r $label $mode ${us:-failed}" | tee -a "$WORK/rounds.txt"
    done
  done
done

echo "server CPU per login, medians of $ROUNDS rounds (µs):"
printf '%-12s' server; for mode in $MODES; do printf '%13s' "$mode"; done; echo
for label in "${LABELS[@]}"; do
  printf '%-12s' "$label"
  for mode in $MODES; do
    awk -v l="$label" -v m="$mode" '$2 == l && $3 == m && $4 != "failed" {print $4}' "$WORK/rounds.txt" |
      sort -n | awk '{v[NR] = $1} END {
        if (NR == 0) { printf "%13s", "-"; exit }
        printf "%13.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  done
  echo
done
