#!/usr/bin/env bash
# The load benchmark of the oauth-edge gateway: upstream direct, gateway with auth off,
# gateway with auth on (warm-cache bearer token) and, optionally, nginx with auth_request,
# in one run, on 127.0.0.1 only. See README.md beside this file.
#
#   benches/load/run.sh                      # 3 rounds x 10 s per scenario
#   DURATION=5 ROUNDS=1 benches/load/run.sh  # a quick look
#   WITH_NGINX=1 benches/load/run.sh         # install nginx from Debian if missing, and add it
#
# Every knob is an environment variable; the defaults are listed below. Every process this
# script starts is stopped when it exits, however it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

DURATION=${DURATION:-10}       # seconds per scenario and round
CONNS=${CONNS:-64}             # wrk connections
WRK_THREADS=${WRK_THREADS:-2}  # wrk threads
ROUNDS=${ROUNDS:-3}            # rounds; scenarios are interleaved within a round; medians reported
GW_THREADS=${GW_THREADS:-1}    # [gateway] threads (and nginx worker_processes)
UP_THREADS=${UP_THREADS:-1}    # the upstream's tokio worker threads
STORE=${STORE:-sqlite}         # the auth-on gateway's store: sqlite (default) or memory
WITH_NGINX=${WITH_NGINX:-auto} # auto: if installed; 1: install from Debian if missing; 0: never
PORT_BASE=${PORT_BASE:-28080}  # gateway off = +0, upstream = +1, gateway on = +2, nginx = +3
SKIP_BUILD=${SKIP_BUILD:-0}    # 1: use the binaries already built
KEEP=${KEEP:-0}                # 1: keep the temporary directory (configs, logs, wrk output)
RESULTS=${RESULTS:-}           # a file to write the results table to (markdown), as well
NO_PIN=${NO_PIN:-0}            # 1: no taskset at all
ONLY=${ONLY:-}                 # a subset of the scenarios, e.g. ONLY="auth-off auth-on"
AB=${AB:-1}                    # 1: each round also loads both gateways at once (see below)

for v in DURATION CONNS WRK_THREADS ROUNDS GW_THREADS UP_THREADS PORT_BASE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "[load] error: $v must be a positive whole number (seconds for DURATION)" >&2; exit 2; }
done
[[ $STORE == sqlite || $STORE == memory ]] || { echo "[load] error: STORE is sqlite or memory" >&2; exit 2; }

# CPU layout. On a 2-core machine the gateway (or nginx) gets core 0 to itself, and the load
# generator and the upstream share core 1: the proxy under test is the bottleneck, not the
# tools around it. With 4+ cores: gateway 0-1, upstream 2, wrk 3+.
NCPU=$(nproc 2>/dev/null || echo 1)
if ((NCPU >= 4)); then
  DEF_GW="0-1" DEF_UP="2" DEF_LOAD="3-$((NCPU - 1))"
elif ((NCPU >= 2)); then
  DEF_GW="0" DEF_UP="1" DEF_LOAD="1"
else
  DEF_GW="0" DEF_UP="0" DEF_LOAD="0"
fi
GW_CPUS=${GW_CPUS:-$DEF_GW}
UP_CPUS=${UP_CPUS:-$DEF_UP}
LOAD_CPUS=${LOAD_CPUS:-$DEF_LOAD}

HOST=127.0.0.1
P_OFF=$PORT_BASE
P_UP=$((PORT_BASE + 1))
P_ON=$((PORT_BASE + 2))
P_NGX=$((PORT_BASE + 3))

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY=$TARGET_DIR/release/oauth-edge
UPSTREAM=$TARGET_DIR/release/examples/load_upstream

log() { printf '[load] %s\n' "$*" >&2; }
die() {
  printf '[load] error: %s\n' "$*" >&2
  exit 1
}

pinning() { # pinning CPUS: the command prefix that pins to CPUS, in the array PIN
  PIN=()
  if [[ $NO_PIN != 1 && -n $1 ]]; then PIN=(taskset -c "$1"); fi
}

# --- processes and cleanup -------------------------------------------------------------

PIDS=()
LOAD_PIDS=()
declare -A SERVER_PID
TMP=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  # The load runs first (each a subshell with timeout and wrk below it), then the servers.
  for p in "${LOAD_PIDS[@]}"; do kill_tree "$p"; done
  # pingora: SIGINT is its fast shutdown; the others stop on SIGTERM.
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  local deadline=$((SECONDS + 5))
  for p in "${PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
# kill_tree PID: PID and everything below it, the leaves first
kill_tree() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done
  kill -TERM "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# in_bg OUT CMD...: CMD in the background, its output in OUT, and wait for it. Unlike a command
# in the foreground, the wait ends at once when a signal comes, and cleanup stops CMD.
in_bg() {
  local out=$1
  shift
  "$@" >"$out" &
  LOAD_PIDS+=($!)
  wait $!
}

start() { # start NAME CPUS CMD...: start CMD in the background, log to $TMP/NAME.log
  local name=$1 cpus=$2
  shift 2
  pinning "$cpus"
  # taskset execs the command, so $! is the server's own pid.
  "${PIN[@]}" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  SERVER_PID[$name]=$!
}

port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

wait_http() { # wait_http URL: until it answers at all, 20 s at most
  local deadline=$((SECONDS + 20))
  until curl -s -o /dev/null --max-time 1 "$1"; do
    ((SECONDS < deadline)) || die "nothing answers at $1 (logs in $TMP, KEEP=1 keeps them)"
    sleep 0.2
  done
}

# --- tools -----------------------------------------------------------------------------

apt_install() {
  command -v apt-get >/dev/null || return 1
  [[ $(id -u) == 0 ]] || return 1
  # An apt-get update only when the lists are missing or old.
  if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1) ]]; then
    timeout 300 apt-get update -qq >&2 || return 1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$@" >&2
}

for t in cargo curl awk; do command -v "$t" >/dev/null || die "$t is required"; done

LOADGEN=wrk
if ! command -v wrk >/dev/null; then
  log "wrk is missing: installing it from Debian"
  if ! apt_install wrk || ! command -v wrk >/dev/null; then
    if command -v oha >/dev/null || { log "no wrk: cargo install oha" && timeout 1200 cargo install oha >&2; }; then
      LOADGEN=oha
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      die "neither wrk nor oha could be installed"
    fi
  fi
fi

NGINX=""
if [[ $WITH_NGINX != 0 ]]; then
  if command -v nginx >/dev/null; then
    NGINX=$(command -v nginx)
  elif [[ $WITH_NGINX == 1 ]]; then
    log "installing nginx from Debian (its service is not started)"
    # policy-rc.d 101: the package's scripts must not start a system nginx on port 80.
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    apt_install nginx || log "nginx could not be installed: skipping it"
    [[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
    NGINX=$(command -v nginx || true)
  fi
fi
# Scenarios run as they were in a session started without pinning support too.
command -v taskset >/dev/null || { log "no taskset: nothing is pinned"; NO_PIN=1; }

# --- build -----------------------------------------------------------------------------

if [[ $SKIP_BUILD != 1 ]]; then
  log "building the gateway and the upstream (release)"
  (cd "$ROOT" && cargo build --release -q -p oauth-edge-gateway --bin oauth-edge --example load_upstream)
fi
[[ -x $GATEWAY && -x $UPSTREAM ]] || die "missing $GATEWAY or $UPSTREAM (build them, or unset SKIP_BUILD)"

# --- set up ----------------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/oauth-edge-load.XXXXXX")
for p in $P_OFF $P_UP $P_ON $P_NGX; do
  port_free "$p" || die "port $p is taken; set PORT_BASE"
done

SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# gateway_config FILE PORT STORE: the two gateways are the same but for their port (and their
# store's file): each has a route with auth on, /on, and one with auth off, /off, so "auth on"
# and "auth off" can each be measured on either process (see the concurrent runs below).
gateway_config() {
  local file=$1 port=$2 store=$3
  # It holds a client secret: the gateway reads it only if it is the owner's alone.
  (umask 077; : >"$file")
  {
    if [[ $store == sqlite ]]; then
      printf '[store]\nkind = "sqlite"\npath = "%s"\n\n' "$TMP/edge-$port.db"
    else
      printf '[store]\nkind = "memory"\n\n'
    fi
    printf '[[clients]]\nid = "bench"\nsecret = "%s"\nscopes = ["read"]\n\n' "$SECRET"
    cat <<EOF
[[routes]]
path = "/on"
require = "bearer"

[[routes]]
path = "/off"
require = "none"

[[routes]]
path = "/"
require = "none"

[gateway]
threads = $GW_THREADS
access_log = false
grace_period = "1s"

[[gateway.listeners]]
address = "$HOST:$port"

[[gateway.upstreams]]
name = "up"
addresses = ["$HOST:$P_UP"]

[gateway.admin]
enabled = false
EOF
  } >"$file"
}

gateway_config "$TMP/off.toml" "$P_OFF" "$STORE"
gateway_config "$TMP/on.toml" "$P_ON" "$STORE"
for c in off on; do
  "$GATEWAY" check-config "$TMP/$c.toml" >"$TMP/check-$c.log" 2>&1 ||
    die "bad config $TMP/$c.toml: $(cat "$TMP/check-$c.log")"
done

export OAUTH_EDGE_LOG=${OAUTH_EDGE_LOG:-warn}
start upstream "$UP_CPUS" "$UPSTREAM" "$HOST:$P_UP" "$UP_THREADS"
start gateway-off "$GW_CPUS" "$GATEWAY" serve --config "$TMP/off.toml"
start gateway-on "$GW_CPUS" "$GATEWAY" serve --config "$TMP/on.toml"
wait_http "http://$HOST:$P_UP/"
wait_http "http://$HOST:$P_OFF/"
wait_http "http://$HOST:$P_ON/"

if [[ -n $NGINX ]]; then
  mkdir -p "$TMP/nginx"
  cat >"$TMP/nginx/nginx.conf" <<EOF
# The do-it-yourself peer: nginx proxying to the same upstream, asking an auth_request
# subrequest first. The subrequest goes to the upstream too, which answers 200 at once: the
# peer's best case (a real check would cost more).
worker_processes $GW_THREADS;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream up {
        server $HOST:$P_UP;
        keepalive 256;
    }
    server {
        listen $HOST:$P_NGX;
        location / {
            auth_request /_auth;
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /_auth {
            internal;
            proxy_pass http://up/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
    }
}
EOF
  "$NGINX" -t -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx-test.log" 2>&1 ||
    die "nginx -t failed: $(cat "$TMP/nginx-test.log")"
  start nginx "$GW_CPUS" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
  wait_http "http://$HOST:$P_NGX/"
fi

# A token from each gateway, and one request with it to its auth-on route, so its status is
# cached. Each gateway is always sent its own token, on either route.
declare -A AUTH_AT
for port in $P_OFF $P_ON; do
  resp=$(curl -s --max-time 10 -u "bench:$SECRET" -d grant_type=client_credentials \
    "http://$HOST:$port/oauth2/token")
  token=$(printf '%s' "$resp" | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p')
  [[ -n $token ]] || die "no token from the gateway on $port: $resp"
  AUTH_AT[$port]="Authorization: Bearer $token"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "${AUTH_AT[$port]}" "http://$HOST:$port/on")
  [[ $code == 200 ]] || die "the warm-up request with the token got $code from $port"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$port/on")
  [[ $code == 401 ]] || die "the gateway on $port let a request without a token through /on ($code)"
done

# --- scenarios -------------------------------------------------------------------------

SCENARIOS=(direct auth-off auth-on)
# auth-off and auth-on run on the two gateway processes; the concurrent runs also use the
# swapped pair, auth-on@A (the first gateway's /on) and auth-off@B (the second's /off).
declare -A URL=(
  [direct]="http://$HOST:$P_UP/"
  [auth-off]="http://$HOST:$P_OFF/off"
  [auth-on]="http://$HOST:$P_ON/on"
  [auth-on@A]="http://$HOST:$P_OFF/on"
  [auth-off@B]="http://$HOST:$P_ON/off"
)
# The same request everywhere: a bearer header (each gateway its own token).
declare -A AUTH=(
  [direct]="${AUTH_AT[$P_ON]}"
  [auth-off]="${AUTH_AT[$P_OFF]}"
  [auth-on]="${AUTH_AT[$P_ON]}"
  [auth-on@A]="${AUTH_AT[$P_OFF]}"
  [auth-off@B]="${AUTH_AT[$P_ON]}"
  [nginx]="${AUTH_AT[$P_ON]}"
)
declare -A WHAT=(
  [direct]="upstream direct (no proxy)"
  [auth-off]="gateway, auth off (require = none)"
  [auth-on]="gateway, auth on (bearer, warm cache)"
)
if [[ -n $NGINX ]]; then
  SCENARIOS+=(nginx)
  URL[nginx]="http://$HOST:$P_NGX/"
  WHAT[nginx]="nginx auth_request (subrequest to the upstream)"
fi
if [[ -n ${ONLY:-} ]]; then # ONLY="auth-off auth-on": run just these scenarios
  read -ra SCENARIOS <<<"$ONLY"
  for s in "${SCENARIOS[@]}"; do [[ -n ${WHAT[$s]:-} ]] || die "ONLY: no scenario $s"; done
fi

# to_ms VALUE: wrk's 1.23ms / 456.00us / 1.20s as milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}

declare -A SERVER=([direct]=upstream [auth-off]=gateway-off [auth-on]=gateway-on [nginx]=nginx)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# cpu_ticks PID: user + system CPU time of PID and its child processes (nginx's workers), in
# clock ticks
cpu_ticks() {
  local p t=0 v
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    # The fields after the command name, which may hold spaces: utime and stime are 12 and 13.
    v=$(sed -E 's/^.*\) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# run_one SCENARIO ROUND: one load run; prints "rps p50_ms p99_ms errors cpu_us_per_request"
# (the CPU time the server under test used per request: the proxy, or the upstream for
# direct; a measure that noise from other processes on the machine barely moves)
run_one() {
  local s=$1 r=$2 out="$TMP/$1.$2.out" pid=${SERVER_PID[${SERVER[$1]}]} t0 t1 line
  t0=$(cpu_ticks "$pid")
  line=$(run_load "$s" "$out") || return 1
  t1=$(cpu_ticks "$pid")
  read -r rps _ <<<"$line"
  echo "$line $(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v rps="$rps" -v t="$DURATION" \
    'BEGIN {if (rps > 0) printf "%.1f", d / hz * 1e6 / (rps * t); else print 0}')"
}

# run_load SCENARIO OUTFILE: the load generator against SCENARIO; prints "rps p50 p99 errors"
run_load() {
  local s=$1 out=$2
  if [[ $LOADGEN == wrk ]]; then
    pinning "$LOAD_CPUS"
    "${PIN[@]}" timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" \
      --latency -H "${AUTH[$s]}" "${URL[$s]}" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF}
                /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
                END {print n + 0}' "$out")
    echo "${rps:-0} $p50 $p99 $errs"
  else
    pinning "$LOAD_CPUS"
    "${PIN[@]}" timeout $((DURATION + 30)) oha --no-tui --output-format json -z "${DURATION}s" \
      -c "$CONNS" -H "${AUTH[$s]}" "${URL[$s]}" >"$out" 2>&1 || die "oha failed: $(cat "$out")"
    python3 - "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
s, p = d["summary"], d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
bad = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(d.get("errorDistribution", {}).values())
print(f'{s["requestsPerSec"]:.2f} {p["p50"] * 1000:.3f} {p["p99"] * 1000:.3f} {bad}')
EOF
  fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# cpu_sample: the aggregate "cpu" line of /proc/stat (user nice system idle iowait irq softirq
# steal); cpu_pct OLD NEW: "busy% steal%" between two samples
cpu_sample() { head -1 /proc/stat; }
cpu_pct() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    split(a, x); split(b, y); t = 0
    for (i = 2; i <= 9; i++) { d[i] = y[i] - x[i]; t += d[i] }
    if (t <= 0) { print "0 0"; exit }
    printf "%.0f %.0f\n", 100 * (t - d[5] - d[6] - d[9]) / t, 100 * d[9] / t }'
}
if [[ $NO_PIN == 1 ]]; then
  CPU_LAYOUT="nothing pinned"
else
  CPU_LAYOUT="cpus: gateway/nginx $GW_CPUS, upstream $UP_CPUS, load generator $LOAD_CPUS"
fi
read -r LOAD1 _ </proc/loadavg
c0=$(cpu_sample)
sleep 2
read -r IDLE_BUSY IDLE_STEAL <<<"$(cpu_pct "$c0" "$(cpu_sample)")"
log "$(date -u '+%Y-%m-%d %H:%M UTC'): ${#SCENARIOS[@]} scenarios x $ROUNDS rounds x ${DURATION}s;" \
  "$LOADGEN -t$WRK_THREADS -c$CONNS; gateway threads $GW_THREADS, store $STORE;" \
  "$CPU_LAYOUT"
log "before the run: load average $(cut -d' ' -f1-3 /proc/loadavg); over 2 s with only idle" \
  "servers up, the CPUs were ${IDLE_BUSY}% busy, ${IDLE_STEAL}% stolen by the hypervisor"
if ((IDLE_BUSY > 10)); then
  log "warning: something else is using ${IDLE_BUSY}% of the CPUs: numbers will be noisy (see top)"
fi
RUN_START=$(cpu_sample)

declare -A RPS P50 P99 ERR CPU
# ab_pair FIRST SECOND ROUND: loads both at once, FIRST's load started first, half the
# connections each; writes "rate_of_FIRST rate_of_SECOND" to $TMP/ab.res. Non-2xx responses
# and socket errors are added to auth-on's count, which flags the run.
ab_pair() {
  local half=$(((CONNS + 1) / 2)) a b ea eb
  (CONNS=$half WRK_THREADS=1 run_load "$1" "$TMP/ab-$1.$3.out" >"$TMP/ab-$1.$3.res") &
  a=$!
  (CONNS=$half WRK_THREADS=1 run_load "$2" "$TMP/ab-$2.$3.out" >"$TMP/ab-$2.$3.res") &
  b=$!
  LOAD_PIDS+=("$a" "$b")
  wait "$a" || return 1
  wait "$b" || return 1
  read -r a _ _ ea <"$TMP/ab-$1.$3.res"
  read -r b _ _ eb <"$TMP/ab-$2.$3.res"
  ((ea + eb == 0)) || ERR[auth-on]=$((${ERR[auth-on]:-0} + ea + eb))
  echo "$a $b" >"$TMP/ab.res"
}

AB_RATIO=""
AB_HALVES=""
[[ " ${SCENARIOS[*]} " == *" auth-off "* && " ${SCENARIOS[*]} " == *" auth-on "* && $LOADGEN == wrk ]] || AB=0
for ((r = 1; r <= ROUNDS; r++)); do
  for s in "${SCENARIOS[@]}"; do
    in_bg "$TMP/line" run_one "$s" "$r" || die "the $s run failed (KEEP=1 keeps $TMP)"
    line=$(<"$TMP/line")
    read -r rps p50 p99 errs cpu <<<"$line"
    RPS[$s]+="$rps "
    CPU[$s]+="$cpu "
    P50[$s]+="$p50 "
    P99[$s]+="$p99 "
    ERR[$s]=$((${ERR[$s]:-0} + errs))
    log "round $r/$ROUNDS  $(printf '%-9s %10.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %s  server CPU %6.1f us/req' \
      "$s" "$rps" "$p50" "$p99" "$errs" "$cpu")"
  done
  if [[ $AB == 1 ]]; then
    # Both gateways loaded at once, half the connections each: they share the gateway's
    # core at the same moment, so whatever else the machine does hits both alike, and the
    # ratio of their rates is the inverse ratio of their costs per request. Twice per round,
    # crossed: first auth off on gateway A against auth on on gateway B, auth off's load
    # started first; then auth on on A against auth off on B, auth on's load started first.
    # Which process serves which side, and which load starts first, both flip between the two
    # halves, so neither favours a side: the round's ratio is the geometric mean of the two.
    ab_pair auth-off auth-on "$r" || die "the concurrent auth-off/auth-on run failed (KEEP=1 keeps $TMP)"
    read -r ab_off1 ab_on1 <"$TMP/ab.res"
    ab_pair auth-on@A auth-off@B "$r" || die "the concurrent auth-on/auth-off run failed (KEEP=1 keeps $TMP)"
    read -r ab_on2 ab_off2 <"$TMP/ab.res"
    r1=$(ratio "$ab_on1" "$ab_off1")
    r2=$(ratio "$ab_on2" "$ab_off2")
    rg=$(awk -v a="$r1" -v b="$r2" 'BEGIN {printf "%.3f", sqrt(a * b)}')
    AB_RATIO+="$rg "
    AB_HALVES+="$r1/$r2 "
    log "round $r/$ROUNDS  concurrent: auth off on A $(printf '%.0f' "$ab_off1"), auth on on B $(printf '%.0f' "$ab_on1") req/s," \
      "ratio $r1; auth on on A $(printf '%.0f' "$ab_on2"), auth off on B $(printf '%.0f' "$ab_off2") req/s, ratio $r2; round $rg"
  fi
done
read -r _ RUN_STEAL <<<"$(cpu_pct "$RUN_START" "$(cpu_sample)")"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
log "after: load average $LOAD_AFTER; ${RUN_STEAL}% of the CPU time was stolen by the hypervisor during the run"

# --- report ----------------------------------------------------------------------------

med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }
# paired ratio: the median over rounds of A/B within each round
paired() {
  local -a a b
  read -ra a <<<"${RPS[$1]}"
  read -ra b <<<"${RPS[$2]}"
  local i
  for i in "${!a[@]}"; do ratio "${a[$i]}" "${b[$i]}"; echo; done | median
}

declare -A M
for s in "${SCENARIOS[@]}"; do M[$s]=$(med "${RPS[$s]}"); done

{
  echo
  echo "oauth-edge load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $ROUNDS x ${DURATION}s per scenario,"
  echo "$LOADGEN ${WRK_THREADS} threads ${CONNS} connections; gateway threads $GW_THREADS, store $STORE; $CPU_LAYOUT"
  echo "before: load average $LOAD1, CPUs ${IDLE_BUSY}% busy with nothing running; during: ${RUN_STEAL}% steal; after: load average $LOAD_AFTER"
  echo
  echo "| scenario | req/s (median) | p50 ms | p99 ms | server CPU µs/req | errors | req/s per round |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for s in "${SCENARIOS[@]}"; do
    printf '| %s | %.0f | %.2f | %.2f | %.1f | %s | %s|\n' "${WHAT[$s]}" "${M[$s]}" \
      "$(med "${P50[$s]}")" "$(med "${P99[$s]}")" "$(med "${CPU[$s]}")" "${ERR[$s]}" \
      "$(for v in ${RPS[$s]}; do printf '%.0f ' "$v"; done)"
  done
  echo
  echo "| ratio | of medians | median of per-round ratios | budget |"
  echo "|---|---:|---:|---|"
  # ratio_row LABEL A B [BUDGET]: a row of the ratio table, when both scenarios ran
  ratio_row() {
    [[ -n ${M[$2]:-} && -n ${M[$3]:-} ]] || return 0
    local p verdict=""
    p=$(paired "$2" "$3")
    [[ -n ${4:-} ]] && verdict=">= $4: $(awk -v r="$p" -v b="$4" 'BEGIN {print (r >= b ? "met" : "MISSED")}')"
    printf '| %s | %s | %s | %s |\n' "$1" "$(ratio "${M[$2]}" "${M[$3]}")" "$p" "$verdict"
  }
  ratio_row "auth on / auth off" auth-on auth-off 0.95
  if [[ -n ${M[auth-on]:-} && -n ${M[auth-off]:-} ]]; then
    printf '| server CPU per request, auth on / auth off | %s | | |\n' \
      "$(ratio "$(med "${CPU[auth-on]}")" "$(med "${CPU[auth-off]}")")"
  fi
  if [[ -n $AB_RATIO ]]; then
    ab=$(med "$AB_RATIO")
    printf '| auth on / auth off, both loaded at once, crossed (per round: %s; halves %s) | | %s | >= 0.95: %s |\n' "${AB_RATIO% }" "${AB_HALVES% }" "$ab" \
      "$(awk -v r="$ab" 'BEGIN {print (r >= 0.95 ? "met" : "MISSED")}')"
  fi
  ratio_row "gateway auth off / direct" auth-off direct
  ratio_row "gateway auth on / direct" auth-on direct
  ratio_row "gateway auth on / nginx auth_request" auth-on nginx 1.25
  for s in "${SCENARIOS[@]}"; do
    ((${ERR[$s]} == 0)) || echo "WARNING: $s had ${ERR[$s]} non-2xx responses or socket errors: its numbers are not valid"
  done
} | tee ${RESULTS:+"$RESULTS"}
