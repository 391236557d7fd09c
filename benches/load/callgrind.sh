#!/usr/bin/env bash
# Instructions per request through the gateway, counted by callgrind: steadier than rates on a
# shared machine. Usage: benches/load/callgrind.sh REQUIRE [N] [BIN]
#   REQUIRE  the route's requirement: none or bearer
#   N        requests counted, after 200 warm-up requests on the same connection (3000)
#   BIN      the gateway (target/release/oauth-edge)
# Needs valgrind, python3 and curl, and the release builds of oauth-edge and load_upstream
# (cargo build --release -p oauth-edge-gateway --bin oauth-edge --example load_upstream).
# Prints the user-space instructions per request (the kernel is not counted); the profile
# stays in $OUT (callgrind.out.<require>) for callgrind_annotate.
# SHAPE=wrk (default) sends what wrk sends, Host and Authorization only; SHAPE=curl adds
# curl's User-Agent and Accept. CACHESIM=1 also simulates the caches and branch predictors and
# prints their misses per request (first-level instruction and data misses, mispredictions):
# what instruction counts alone do not show.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
REQ=${1:?none or bearer}; N=${2:-3000}; BIN=${3:-$TARGET_DIR/release/oauth-edge}
OUT=${OUT:-callgrind.out.$REQ}
T=$(mktemp -d "${TMPDIR:-/tmp}/oauth-edge-cg.XXXXXX")
UP=$TARGET_DIR/release/examples/load_upstream
SECRET=abcdefabcdefabcdefabcdefabcdef12
# The config holds a client secret: the gateway reads it only if it is the owner's alone.
(umask 077; cat >"$T/c.toml") <<C
[store]
kind = "memory"

[[clients]]
id = "bench"
secret = "$SECRET"
scopes = ["read"]

[[routes]]
path = "/"
require = "$REQ"

[gateway]
threads = 1
access_log = false
grace_period = "1s"

[[gateway.listeners]]
address = "127.0.0.1:29040"

[[gateway.upstreams]]
name = "up"
addresses = ["127.0.0.1:29041"]

[gateway.admin]
enabled = false
C
export OAUTH_EDGE_LOG=warn
taskset -c 1 $UP 127.0.0.1:29041 1 >/dev/null 2>&1 & P1=$!
SIM=()
[[ ${CACHESIM:-0} == 1 ]] && SIM=(--cache-sim=yes --branch-sim=yes)
valgrind --tool=callgrind "${SIM[@]}" --instr-atstart=no --callgrind-out-file="$T/cg" "$BIN" serve --config $T/c.toml >$T/g.log 2>&1 & P2=$!
trap 'kill $P1 2>/dev/null; kill -INT $P2 2>/dev/null; sleep 3; kill -9 $P1 $P2 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 60); do curl -s -o /dev/null --max-time 5 http://127.0.0.1:29040/ && break; sleep 1; done
TOK=$(curl -s -u bench:$SECRET -d grant_type=client_credentials http://127.0.0.1:29040/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
# 200 warm-up requests, then N counted ones, on one keep-alive connection.
python3 - "$TOK" "$N" "$P2" "${SHAPE:-wrk}" <<'P'
import re, socket, subprocess, sys
tok, n, pid, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", 29040))
extra = "User-Agent: curl/8.5.0\r\nAccept: */*\r\n" if shape == "curl" else ""
req = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:29040\r\n{extra}Authorization: Bearer {tok}\r\n\r\n".encode()
def run(count):
    ok = 0
    for _ in range(count):
        s.sendall(req)
        buf = b""
        while True:
            d = s.recv(65536)
            if not d:
                raise SystemExit("the gateway closed the connection")
            buf += d
            head, sep, body = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head) if sep else None
            if m and len(body) >= int(m.group(1)):
                break
        ok += head.startswith(b"HTTP/1.1 200")
    if ok != count:
        raise SystemExit(f"only {ok} of {count} answers were 200")
run(200)
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
run(n)
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
P
callgrind_control -d $P2 >/dev/null 2>&1
sleep 1
cp "$T/cg.1" "$OUT"
total=$(callgrind_annotate "$OUT" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "require = $REQ: $total instructions over $N requests, $((total / N)) per request (profile: $OUT)"
if [[ ${CACHESIM:-0} == 1 ]]; then
  callgrind_annotate "$OUT" | awk -v n="$N" '
    /^Events shown:/ {for (i = 3; i <= NF; i++) ev[i - 2] = $i}
    /PROGRAM TOTALS/ {j = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9,]+$/) {gsub(",", "", $i); v[++j] = $i}}
    END {for (k = 1; k <= j; k++) if (ev[k] ~ /^(I1mr|D1mr|D1mw|Bcm|Bim)$/) printf "  %s %.0f per request\n", ev[k], v[k] / n}'
fi
