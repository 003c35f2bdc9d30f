#!/usr/bin/env bash
# Writes src/bin/ftpdlib/symbol-order.txt: the functions of the release `ftpdlib` binary
# that run at start-up, then those a typical session runs, in that order. The release
# build hands the file to the linker (build.rs), which lays these functions out first and
# side by side, so that start-up and the serving loop touch a few contiguous pages of code
# instead of pages all over the binary: the kernel maps file pages in 64 KiB blocks around
# each page touched, so scattered code costs resident memory even when little of it runs.
#
#   benches/symbol-order.sh      # needs valgrind (callgrind) and python3
#
# Run it again after large changes: symbols that no longer exist are skipped by the linker,
# and new functions simply land after the listed ones.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$ROOT/src/bin/ftpdlib/symbol-order.txt
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v valgrind >/dev/null || { echo "symbol-order.sh: valgrind is needed" >&2; exit 1; }

# Profile a build that does not use the current order, so that the profile does not depend
# on the file it rewrites.
(cd "$ROOT" && FTPDLIB_SYMBOL_ORDER=0 CARGO_TARGET_DIR="$WORK/target" \
    cargo build --release --quiet --bin ftpdlib)
BIN=$WORK/target/release/ftpdlib

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/root"
echo hello >"$WORK/root/hello.txt"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/cg.%p" \
    "$BIN" -i 127.0.0.1 -p "$PORT" -u user -P 12345 -d "$WORK/root" -w \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# Wait (bounded) for the greeting, then dump what start-up ran.
python3 - "$PORT" <<'EOF'
import socket, sys, time
deadline = time.time() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.recv(100)
        s.close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)
EOF
callgrind_control --dump=startup "$SERVER_PID" >/dev/null

# A session of the commands clients use most.
python3 - "$PORT" "$WORK/root" <<'EOF'
import ftplib, io, sys
for _ in range(2):
    f = ftplib.FTP()
    f.connect("127.0.0.1", int(sys.argv[1]), timeout=30)
    f.login("user", "12345")
    f.pwd(); f.sendcmd("TYPE I"); f.sendcmd("SYST"); f.sendcmd("FEAT")
    f.storbinary("STOR up.bin", io.BytesIO(b"x" * 300000))
    f.retrbinary("RETR up.bin", lambda b: None)
    f.retrbinary("RETR hello.txt", lambda b: None)
    f.size("up.bin"); f.sendcmd("MDTM up.bin")
    f.nlst(); f.retrlines("LIST", lambda l: None); list(f.mlsd())
    f.mkd("dir"); f.cwd("dir"); f.cwd(".."); f.rmd("dir")
    f.rename("up.bin", "moved.bin"); f.delete("moved.bin")
    f.set_pasv(False); f.retrlines("LIST", lambda l: None); f.set_pasv(True)
    try:
        f.sendcmd("NOSUCH")
    except ftplib.error_perm:
        pass
    f.quit()
EOF
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=

python3 - "$WORK" "$BIN" "$OUT" <<'EOF'
import glob, os, re, sys
work, binary, out = sys.argv[1:]

def functions(path):
    """Functions of `binary` that ran, from a callgrind profile (names as the linker sees
    them: --demangle=no)."""
    objects, names, found = {}, {}, []
    current_ob = None
    seen = set()
    for line in open(path, errors="replace"):
        m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                objects[m.group(2)] = m.group(3).strip()
            if m.group(1) == "ob":
                current_ob = objects.get(m.group(2))
            continue
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3).strip()
            if m.group(1) == "fn" and current_ob == binary:
                name = names.get(m.group(2), "").split("'")[0]
                if name and not name.startswith("0x") and name not in seen:
                    seen.add(name)
                    found.append(name)
    return found

parts = sorted(glob.glob(os.path.join(work, "cg.*")), key=os.path.getmtime)
if len(parts) < 2:
    sys.exit("expected a start-up dump and a final dump, found %d" % len(parts))
startup = functions(parts[0])
session = [f for p in parts[1:] for f in functions(p)]
order, seen = [], set()
for f in startup + session:
    if f not in seen:
        seen.add(f)
        order.append(f)
with open(out, "w") as o:
    o.write("# Written by benches/symbol-order.sh: the functions start-up runs (%d), then\n"
            "# those a session runs (%d). The linker lays them out first, in this order.\n"
            % (len(startup), len(order) - len(startup)))
    o.write("\n".join(order) + "\n")
print("%s: %d start-up + %d session functions" % (out, len(startup), len(order) - len(startup)))
EOF
