#!/usr/bin/env bash
# The gateway beside its peers in the shared side-by-side harness (`../shared/peers/run.sh`):
# bare pingora (the same framework, no auth), nginx with `auth_request`, plain nginx, all on
# one upstream, in one run, one worker or thread each, ratios against bare pingora.
#
#   benches/load/peers.sh                  # ROUNDS=5 DURATION=5, as the issue's table
#   ROUNDS=3 benches/load/peers.sh         # any knob of run.sh passes through
#   GW_THREADS=2 benches/load/peers.sh     # the scaling check (peers get 2 workers too)
#   WORK_STEALING=true benches/load/peers.sh    # pingora's work stealing, gateway and bare pingora
#                                              # (default: the gateway's, on with more than one thread)
#   GATEWAY_BIN=/path/to/oauth-edge SKIP_BUILD=1 benches/load/peers.sh   # another build
#   PEERS=/path/to/peers benches/load/peers.sh
#
# The gateway and bare pingora always run with the same pingora settings (threads, work
# stealing), so that their ratio is the cost of what the gateway adds, not of configuration.
#
# One gateway process serves two routes: `/` needs a bearer token (a client_credentials token,
# cache warm) and `/off` needs nothing, so "bearer on" and "auth none" are both measured.
# Needs nginx, wrk and curl (installed from Debian when missing) and cmake for the build.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
GW_THREADS=${GW_THREADS:-1}
# The gateway's default: on with more than one thread. Both get the same. A build older than
# the setting refuses the key: OLD_BUILD=1 leaves it out (that build always steals).
if ((GW_THREADS > 1)); then WORK_STEALING=${WORK_STEALING:-true}; else WORK_STEALING=${WORK_STEALING:-false}; fi
WS_LINE="work_stealing = $WORK_STEALING"
if [[ ${OLD_BUILD:-0} == 1 ]]; then WS_LINE=""; WORK_STEALING=true; fi
export BARE_PINGORA_WORK_STEALING=$WORK_STEALING
export ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-5}
export PROXY_WORKERS=${PROXY_WORKERS:-$GW_THREADS}
PORT=18080

[[ -x $PEERS/run.sh ]] || { echo "peers: no harness at $PEERS (set PEERS)" >&2; exit 2; }
missing=()
for c in nginx wrk curl cmake; do command -v "$c" >/dev/null || missing+=("$c"); done
if ((${#missing[@]})); then
  echo "peers: installing ${missing[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  cargo build --release -p oauth-edge-gateway --bin oauth-edge --manifest-path "$ROOT/Cargo.toml"
fi
BIN=${GATEWAY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/oauth-edge}

T=$(mktemp -d "${TMPDIR:-/tmp}/oauth-edge-peers.XXXXXX")
GW=
cleanup() {
  [[ -n $GW ]] && kill "$GW" 2>/dev/null && wait "$GW" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077; cat >"$T/gw.toml") <<EOF
[store]
kind = "sqlite"
path = "$T/edge.db"

[[clients]]
id = "bench"
secret = "$SECRET"
scopes = ["read"]

[[routes]]
path = "/off"
require = "none"

[[routes]]
path = "/"
require = "bearer"

[gateway]
threads = $GW_THREADS
$WS_LINE
access_log = false
grace_period = "1s"

[[gateway.listeners]]
address = "127.0.0.1:$PORT"

[[gateway.upstreams]]
name = "up"
addresses = ["127.0.0.1:19000"]

[gateway.admin]
enabled = false
EOF

# A first start mints the token (kept in the SQLite store); run.sh then starts the gateway
# again, pinned like the peers, and the token is still good.
OAUTH_EDGE_LOG=warn "$BIN" serve --config "$T/gw.toml" &
GW=$!
for _ in $(seq 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server" && break
  sleep 0.1
done
TOKEN=$(curl -fs -u "bench:$SECRET" -d grant_type=client_credentials \
  "http://127.0.0.1:$PORT/oauth2/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
kill "$GW"; wait "$GW" 2>/dev/null || true; GW=
[[ -n $TOKEN ]] || { echo "peers: no token from the gateway" >&2; exit 1; }

echo "gateway = oauth-edge, bearer on (/); gateway2 = oauth-edge, auth none (/off); threads $GW_THREADS, work stealing $WORK_STEALING" >&2
GATEWAY_CMD="env OAUTH_EDGE_LOG=warn $BIN serve --config $T/gw.toml" \
GATEWAY_HEADER="Authorization: Bearer $TOKEN" \
  "$PEERS/run.sh" bare-pingora gateway "http://127.0.0.1:$PORT/" \
  gateway "http://127.0.0.1:$PORT/off" nginx-authreq nginx-proxy
