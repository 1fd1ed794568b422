#!/usr/bin/env bash
# bench/run.sh — OBO Gateway's performance report, in one invocation on one
# machine (see docs/performance.md). It starts the local tenant, a lean
# upstream, nginx, oauth2-proxy, redis-server and the gateway (built with
# go build) on loopback, measures, prints a summary against the targets, and
# stops everything it started. Two bare Go reverse proxies without
# authentication (benchtool goproxy: httputil; benchtool syncproxy: the
# gateway's proxy on its fast, synchronous leg) are measured beside them as
# references, and every throughput ratio is printed against both. It exits 0 when every step ran (even if a
# target is missed: it is a report), non-zero when a step could not run.
#
# Usage: bench/run.sh [--duration 10s] [--conns 64] [--threads 2] [--warmup 3s] [--rounds 3]
#                     [--rate-duration 10s] [--rate-rounds 3] [--cold-users 500] [--cold-conc 16]
#                     [--burst 200] [--mem-users 20000] [--fill-conc 32]
#                     [--redis-cold-users 200] [--cache-budget 1GiB]
#                     [--gw-gomemlimit ""] [--gw-gogc ""] [--profile] [--keep]
# Each flag has an environment variable of the same name in capitals with _
# (DURATION=5s bench/run.sh). --mem-users 100000 measures 100k users directly.
# --rounds and --rate-rounds repeat the hot-path (wrk) and the open-loop
# measurements on every target; the median of the rounds is reported. A quick
# run that still takes every step: --rounds 1 --rate-rounds 1 --duration 3s
# --warmup 1s --rate-duration 3s --cold-users 50 --burst 20 --mem-users 500
# --redis-cold-users 20.
set -euo pipefail

# ---------- parameters ----------
THREADS=${THREADS:-2}                    # wrk threads
CONNS=${CONNS:-64}                       # wrk connections
DURATION=${DURATION:-10s}                # each closed-loop (wrk) measurement
WARMUP=${WARMUP:-3s}                     # wrk warm-up before each measurement (not counted)
ROUNDS=${ROUNDS:-3}                      # rounds of the hot-path wrk load on every target; the median counts
RATE_DURATION=${RATE_DURATION:-10s}      # each open-loop measurement at half the gateway's max
RATE_ROUNDS=${RATE_ROUNDS:-3}            # rounds of (direct, both bare proxies, gateway) at that rate; the median round counts
COLD_USERS=${COLD_USERS:-500}            # distinct users, each needing an exchange
COLD_CONC=${COLD_CONC:-16}               # their requests in flight
BURST=${BURST:-200}                      # concurrent requests of one brand-new token
MEM_USERS=${MEM_USERS:-20000}            # distinct users pushed to measure memory
FILL_CONC=${FILL_CONC:-32}               # their requests in flight
REDIS_COLD_USERS=${REDIS_COLD_USERS:-200} # new users served while Redis is down
CACHE_BUDGET=${CACHE_BUDGET:-1GiB}       # cache.memory_budget and cache.verified_tokens_budget
GW_GOMEMLIMIT=${GW_GOMEMLIMIT:-}         # the gateways' GOMEMLIMIT (deploy/base sets one); "" = none, Go's default
GW_GOGC=${GW_GOGC:-}                     # the gateways' GOGC; "" = Go's default (100)
KEEP=${KEEP:-0}                          # 1: keep the temporary directory
PROFILE=${PROFILE:-0}                    # 1: also profile the gateway's CPU under the hot-path load
O2P_MODULE=github.com/oauth2-proxy/oauth2-proxy/v7
O2P_VERSION=${O2P_VERSION:-v7.15.6}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  arg=$1; shift
  case $arg in
    -h|--help) usage; exit 0 ;;
    --keep) KEEP=1; continue ;;
    --profile) PROFILE=1; KEEP=1; continue ;;
    --*=*) name=${arg%%=*}; val=${arg#*=} ;;
    --*) name=$arg; [ $# -gt 0 ] || { echo "run.sh: $arg needs a value" >&2; exit 2; }; val=$1; shift ;;
    *) echo "run.sh: unexpected argument $arg (see --help)" >&2; exit 2 ;;
  esac
  var=$(echo "${name#--}" | tr 'a-z-' 'A-Z_')
  case $var in
    THREADS|CONNS|DURATION|WARMUP|ROUNDS|RATE_DURATION|RATE_ROUNDS|COLD_USERS|COLD_CONC|BURST|MEM_USERS|FILL_CONC|REDIS_COLD_USERS|CACHE_BUDGET|GW_GOMEMLIMIT|GW_GOGC)
      printf -v "$var" '%s' "$val" ;;
    *) echo "run.sh: unknown flag $name (see --help)" >&2; exit 2 ;;
  esac
done
for var in ROUNDS RATE_ROUNDS; do
  [[ ${!var} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $var must be a positive number of rounds, not \"${!var}\"" >&2; exit 2; }
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_GOBIN=${BENCH_GOBIN:-$REPO/bench/.bin}   # where oauth2-proxy is installed (kept between runs)
export PATH="$PATH:/usr/local/go/bin"

# ---------- process bookkeeping and cleanup ----------
TMP=$(mktemp -d -t obo-gateway-bench.XXXXXX)
PIDS=()

stop_pid() { # stop_pid PID: TERM, then KILL after 5s; forgets the PID (it may be reused)
  local pid=$1 i keep=()
  for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  PIDS=("${keep[@]}")
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  local all=("${PIDS[@]}")
  for (( i=${#all[@]}-1; i>=0; i-- )); do stop_pid "${all[$i]}"; done
  if [ "$KEEP" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; }; then
    echo "# temporary files (logs, configs, raw outputs) kept in $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

die() { echo "run.sh: FAILED: $*" >&2; exit 1; }
say() { echo "$*"; }
step() { echo; echo "== $*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

# calc EXPR: floating-point arithmetic with awk (variables passed as numbers).
calc() { awk "BEGIN { printf \"%s\", $1 }"; }
# median V...: the middle value; for an even count, the mean of the two middle ones.
median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.6f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# list V...: the values as "a, b, c" with FORMAT (printf) each.
list() { local fmt=$1; shift; printf '%s\n' "$@" | awk -v f="$fmt" '{ printf "%s" f, (NR > 1 ? ", " : ""), $1 }'; }
jget() { jq -r "$2" <<<"$1"; }

# ---------- prerequisites and builds ----------
need go "install Go 1.26"
need wrk "apt-get install wrk"
need nginx "apt-get install nginx"
need redis-server "apt-get install redis-server"
need redis-cli "apt-get install redis-tools"
need jq "apt-get install jq"
need curl "apt-get install curl"

step "build"
BIN=$TMP/bin
mkdir -p "$BIN"
(cd "$REPO" && go build -o "$BIN/gateway" ./cmd/gateway && go build -o "$BIN/benchenv" ./bench/benchenv &&
  go build -o "$BIN/benchtool" ./bench/benchtool) || die "go build"
O2P=$BENCH_GOBIN/oauth2-proxy
if ! { [ -x "$O2P" ] && go version -m "$O2P" 2>/dev/null | grep -q "mod[[:space:]]*$O2P_MODULE[[:space:]]*$O2P_VERSION"; }; then
  say "installing oauth2-proxy $O2P_VERSION into $BENCH_GOBIN (once)"
  mkdir -p "$BENCH_GOBIN"
  (cd "$TMP" && GOBIN=$BENCH_GOBIN go install "$O2P_MODULE@$O2P_VERSION") || die "go install oauth2-proxy"
fi
BT=$BIN/benchtool
say "gateway, benchenv, benchtool built with go build into $BIN; oauth2-proxy $O2P_VERSION at $O2P"

# ---------- environment: tenant + upstream ----------
step "environment"
mkdir -p "$TMP/env"
"$BIN/benchenv" -dir "$TMP/env" >"$TMP/env.json" 2>"$TMP/benchenv.log" &
BENV_PID=$!; PIDS+=("$BENV_PID")
for i in $(seq 300); do
  [ -s "$TMP/env.json" ] && break
  kill -0 "$BENV_PID" 2>/dev/null || die "benchenv exited: $(cat "$TMP/benchenv.log")"
  sleep 0.1
done
[ -s "$TMP/env.json" ] || die "benchenv did not start within 30s"
ENV=$(head -1 "$TMP/env.json")
TENANT_BASE=$(jget "$ENV" .base_url)
AUTHORITY=$(jget "$ENV" .authority)
CA=$(jget "$ENV" .ca_file)
UPSTREAM=$(jget "$ENV" .upstream_url)
UPSTREAM_BODY=$(jget "$ENV" .upstream_body)
CONTROL=$(jget "$ENV" .control_url)
GW_CLIENT_ID=$(jget "$ENV" .gateway_client_id)
TOKEN=$(jget "$ENV" '.tokens[0]')
PATH_Q=/bench/items
say "local tenant  $AUTHORITY"
say "upstream      $UPSTREAM (every answer: $UPSTREAM_BODY)"

cat >"$TMP/auth.lua" <<EOF
-- every request carries the same user token (ignored by the targets without authentication)
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF

OBO_GRANT="urn:ietf:params:oauth:grant-type:jwt-bearer"
# tenant_obo_count: On-Behalf-Of requests the tenant has recorded so far.
tenant_obo_count() {
  curl -sS --fail --cacert "$CA" "$TENANT_BASE/_fakeentra/requests" |
    jq --arg g "$OBO_GRANT" '[.[] | select(.grant_type == $g)] | length'
}
# metric ADMIN 'name{filter}': the summed value of a gateway metric.
metric() { "$BT" metric "http://$1/metrics" "$2" | jq -r --arg k "$2" '.[$k]'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---------- the gateway ----------
# write_gw_config FILE LISTEN ADMIN LOG_LEVEL [REDIS_ADDR REDIS_KEYS]
write_gw_config() {
  local f=$1 listen=$2 admin=$3 level=$4 raddr=${5:-} rkeys=${6:-}
  cat >"$f" <<EOF
# bench/run.sh: the gateway against the local tenant and the bench upstream.
listen: $listen
admin_listen: $admin
admin_pprof: true
log_level: $level
shutdown_grace: 2s
entra:
  tenant_id: $(jget "$ENV" .tenant_id)
  client_id: $GW_CLIENT_ID
  authority_host: $TENANT_BASE
  instance_discovery: false
  audiences: [$(jget "$ENV" '.gateway_identifier_uris | join(", ")')]
  ca_file: $CA
  certificate:
    path: $(jget "$ENV" .gateway_certificate_file)
    key_path: $(jget "$ENV" .gateway_key_file)
cache:
  memory_budget: $CACHE_BUDGET
  verified_tokens_budget: $CACHE_BUDGET
EOF
  if [ -n "$raddr" ]; then
    cat >>"$f" <<EOF
  redis:
    address: $raddr
    encryption_keys: $rkeys
    encryption_key_id: k1
EOF
  fi
  cat >>"$f" <<EOF
routes:
  - name: bench
    path_prefix: /
    upstream: $UPSTREAM
    downstream_scopes: [$(jget "$ENV" .downstream_scope)]
    required_scopes: [access_as_user]
EOF
}

# start_gateway NAME CONFIG_ARGS...: starts ./gateway serve; sets GW_PID, GW_ADDR, GW_ADMIN.
# Returns 1 (with the log in $TMP/NAME.log) if it exits before being ready.
start_gateway() {
  local name=$1; shift
  GW_ADDR=127.0.0.1:$("$BT" freeport)
  GW_ADMIN=127.0.0.1:$("$BT" freeport)
  write_gw_config "$TMP/$name.yaml" "$GW_ADDR" "$GW_ADMIN" "$@"
  env ${GW_GOMEMLIMIT:+GOMEMLIMIT=$GW_GOMEMLIMIT} ${GW_GOGC:+GOGC=$GW_GOGC} \
    "$BIN/gateway" serve -config "$TMP/$name.yaml" >"$TMP/$name.log" 2>&1 &
  GW_PID=$!; PIDS+=("$GW_PID")
  local i
  for i in $(seq 300); do
    kill -0 "$GW_PID" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$GW_ADMIN/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  die "gateway $name not ready within 30s: $(tail -5 "$TMP/$name.log")"
}

# check_200 NAME URL: the target must answer 200 with the upstream's body to the user's token.
check_200() {
  local name=$1 url=$2 code
  code=$(curl -sS -o "$TMP/check-$name.body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url") ||
    die "$name ($url) did not answer"
  [ "$code" = 200 ] || die "$name ($url) answered $code, not 200: $(head -c 400 "$TMP/check-$name.body")"
  [ "$(cat "$TMP/check-$name.body")" = "$UPSTREAM_BODY" ] ||
    die "$name ($url) answered 200 but not the upstream's body: $(head -c 400 "$TMP/check-$name.body")"
}

# run_wrk NAME URL: warm-up, then the measured run; sets W_<field> from the parsed output.
declare -A RPS P50 P99 ERRS REQS
run_wrk() {
  local name=$1 url=$2 out f
  f=$TMP/wrk-$(printf '%s' "$name" | tr -c 'A-Za-z0-9.-' '_')
  wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -s "$TMP/auth.lua" "$url" >"$f.warmup.txt" 2>&1 || die "wrk (warm-up) on $name"
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$TMP/auth.lua" "$url" >"$f.txt" 2>&1 || die "wrk on $name"
  out=$("$BT" wrkparse "$f.txt") || die "parsing wrk output of $name: $(cat "$f.txt")"
  RPS[$name]=$(jget "$out" .rps); P50[$name]=$(jget "$out" .p50_ms); P99[$name]=$(jget "$out" .p99_ms)
  ERRS[$name]=$(jget "$out" .errors); REQS[$name]=$(jget "$out" .requests)
  local flag=""
  [ "${ERRS[$name]}" = 0 ] || flag="   <-- $(jget "$out" .non2xx) non-2xx, $(jget "$out" .socket_errors) socket errors: RUN HAD ERRORS"
  printf '%-32s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms   %8d requests, %d errors%s\n' \
    "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" "${REQS[$name]}" "${ERRS[$name]}" "$flag"
}

say "machine       $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load generators share it"
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
say "load average  $LOAD0 (1 min) before the measurements"
if awk -v l="$LOAD0" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  say "WARNING: other processes are keeping this machine busy: every number below will be noisy, and ratios unreliable"
fi
say "date          $(date -u '+%Y-%m-%d %H:%M UTC')"
say "gateway Go    GOMEMLIMIT=${GW_GOMEMLIMIT:-unset} GOGC=${GW_GOGC:-unset} (its runtime's garbage collector settings; a deployment sets GOMEMLIMIT, see deploy/base)"
say "load          wrk -t$THREADS -c$CONNS -d$DURATION --latency (after a ${WARMUP} warm-up), same user token on every target"

# ---------- 1-3: the same load on every target ----------
step "targets"
# (b) nginx as a plain reverse proxy
NGX=$TMP/nginx; mkdir -p "$NGX"
NGX_PORT=$("$BT" freeport)
{
  echo "worker_processes auto;"
  [ "$(id -u)" = 0 ] && echo "user $(id -un) $(id -gn);"   # stay the current user, as a non-root run would
  cat <<EOF
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGX/client_body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  upstream bench_upstream {
    server ${UPSTREAM#http://};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$NGX/nginx.conf"
nginx -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" -g 'daemon off;' >"$TMP/nginx.out" 2>&1 &
PIDS+=($!)

# (e) reference: a bare Go httputil.ReverseProxy (no authentication)
GOP_PORT=$("$BT" freeport)
"$BT" goproxy -listen "127.0.0.1:$GOP_PORT" -upstream "$UPSTREAM" >"$TMP/goproxy.log" 2>&1 &
PIDS+=($!)

# (f) reference: the gateway's proxy alone on its fast, synchronous leg (proxy.LegFast; no authentication)
SYP_PORT=$("$BT" freeport)
"$BT" syncproxy -listen "127.0.0.1:$SYP_PORT" -upstream "$UPSTREAM" >"$TMP/syncproxy.log" 2>&1 &
PIDS+=($!)

# (d) oauth2-proxy validating the same user token
O2P_PORT=$("$BT" freeport)
SSL_CERT_FILE=$CA "$O2P" --provider=oidc --oidc-issuer-url="$AUTHORITY/v2.0" \
  --client-id="$GW_CLIENT_ID" --client-secret="$(jget "$ENV" .gateway_secret)" \
  --cookie-secret="$(head -c32 /dev/urandom | base64 | tr '+/' '-_')" --email-domain='*' \
  --skip-jwt-bearer-tokens --api-route='^/' --upstream="$UPSTREAM/" \
  --http-address="127.0.0.1:$O2P_PORT" --request-logging=false \
  >"$TMP/oauth2-proxy.log" 2>&1 &
PIDS+=($!)

# (c) the gateway; its first request is the warm-up that performs the one exchange
start_gateway gateway warn || die "gateway did not start: $(tail -5 "$TMP/gateway.log")"
G1_PID=$GW_PID; G1=$GW_ADDR; G1_ADMIN=$GW_ADMIN
# (c') the same gateway with its access log on (log_level info, to a file), for reference
start_gateway gateway-accesslog info || die "gateway-accesslog did not start: $(tail -5 "$TMP/gateway-accesslog.log")"
G1L_PID=$GW_PID; G1L=$GW_ADDR

# Wait for each target, then check that it answers 200 with the upstream's body.
for i in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" && curl -s -o /dev/null "http://127.0.0.1:$O2P_PORT/ping" &&
    curl -s -o /dev/null "http://127.0.0.1:$GOP_PORT/" && curl -s -o /dev/null "http://127.0.0.1:$SYP_PORT/" && break
  sleep 0.1
done
check_200 direct "$UPSTREAM$PATH_Q"
check_200 nginx "http://127.0.0.1:$NGX_PORT$PATH_Q"
check_200 go-reverseproxy "http://127.0.0.1:$GOP_PORT$PATH_Q"
check_200 go-syncproxy "http://127.0.0.1:$SYP_PORT$PATH_Q"
check_200 gateway "http://$G1$PATH_Q"
check_200 gateway-accesslog "http://$G1L$PATH_Q"
check_200 oauth2-proxy "http://127.0.0.1:$O2P_PORT$PATH_Q"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$G1$PATH_Q")
[ "$code" = 401 ] || die "the gateway answered $code to a request without a token (want 401)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$O2P_PORT$PATH_Q")
[ "$code" = 401 ] || die "oauth2-proxy answered $code to a request without a token (want 401)"
EX0=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total{result="success"}')
[ "$EX0" = 1 ] || die "the gateway made $EX0 exchanges for the warm-up request (want 1)"
say "every target answered 200 with the upstream's body to the token (gateway and oauth2-proxy: 401 without it);"
say "the gateway's warm-up request made its one exchange: the downstream token is cached from here on"
# The hot-path targets, in the order each round measures them.
GW="(c) gateway"; NGINX="(b) nginx"; DIRECT="(a) direct"; O2P_T="(d) oauth2-proxy"
GOP="(e) go-reverseproxy [ref]"; SYP="(f) go-syncproxy [ref]"; GWLOG="(c') gateway+accesslog [ref]"
HOT_NAMES=("$DIRECT" "$NGINX" "$GOP" "$SYP" "$GW" "$GWLOG" "$O2P_T")
HOT_URLS=("$UPSTREAM$PATH_Q" "http://127.0.0.1:$NGX_PORT$PATH_Q" "http://127.0.0.1:$GOP_PORT$PATH_Q"
  "http://127.0.0.1:$SYP_PORT$PATH_Q" "http://$G1$PATH_Q" "http://$G1L$PATH_Q" "http://127.0.0.1:$O2P_PORT$PATH_Q")
# rk NAME ROUND: the name of a target's measurement in a round (the name alone when there is one round).
rk() { if [ "$ROUNDS" = 1 ]; then printf '%s' "$1"; else printf '%s #%s' "$1" "$2"; fi; }
# round_ratios A B: A's throughput / B's, one line per round.
round_ratios() { local r; for r in $(seq "$ROUNDS"); do calc "${RPS[$(rk "$1" "$r")]} / ${RPS[$(rk "$2" "$r")]}"; echo; done; }
# ratio A B: the median over the rounds of A's throughput / B's in the same round.
ratio() { median $(round_ratios "$1" "$2"); }
for r in $(seq "$ROUNDS"); do
  echo
  [ "$ROUNDS" = 1 ] || say "round $r of $ROUNDS"
  for i in "${!HOT_NAMES[@]}"; do run_wrk "$(rk "${HOT_NAMES[$i]}" "$r")" "${HOT_URLS[$i]}"; done
  [ "$ROUNDS" = 1 ] || printf 'round %d: gateway/nginx %.2f   gateway/go-reverseproxy %.2f   gateway/go-syncproxy %.2f   go-syncproxy/nginx %.2f\n' "$r" \
    "$(calc "${RPS[$(rk "$GW" "$r")]} / ${RPS[$(rk "$NGINX" "$r")]}")" "$(calc "${RPS[$(rk "$GW" "$r")]} / ${RPS[$(rk "$GOP" "$r")]}")" \
    "$(calc "${RPS[$(rk "$GW" "$r")]} / ${RPS[$(rk "$SYP" "$r")]}")" "$(calc "${RPS[$(rk "$SYP" "$r")]} / ${RPS[$(rk "$NGINX" "$r")]}")"
done
stop_pid "$G1L_PID"
# From here on a target's RPS is the median of its rounds' and its ERRS the sum of their errors.
if [ "$ROUNDS" != 1 ]; then
  for n in "${HOT_NAMES[@]}"; do
    RPS[$n]=$(median $(for r in $(seq "$ROUNDS"); do echo "${RPS[$(rk "$n" "$r")]}"; done))
    ERRS[$n]=$(calc "0 $(for r in $(seq "$ROUNDS"); do printf ' + %s' "${ERRS[$(rk "$n" "$r")]}"; done)")
  done
fi
if [ "$PROFILE" = 1 ]; then
  # Not one of the measurements: profiling costs the gateway some CPU.
  curl -sS -o "$TMP/gateway.cpu.pprof" "http://$G1_ADMIN/debug/pprof/profile?seconds=8" &
  PROF_PID=$!
  wrk -t"$THREADS" -c"$CONNS" -d10s -s "$TMP/auth.lua" "http://$G1$PATH_Q" >"$TMP/wrk-profile.txt" 2>&1 || die "wrk (profile)"
  wait "$PROF_PID" || die "no CPU profile"
  say "[ref] CPU profile of the gateway under the same load (8 s): go tool pprof $BIN/gateway $TMP/gateway.cpu.pprof"
fi
EX1=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total')
[ "$EX1" = 1 ] || die "the gateway made $EX1 exchanges during the hot-path load (want still 1)"

R_NGINX=$(ratio "$GW" "$NGINX")
R_DIRECT=$(ratio "$GW" "$DIRECT")
R_O2P=$(ratio "$GW" "$O2P_T")
R_GOP=$(ratio "$GW" "$GOP")
R_SYP=$(ratio "$GW" "$SYP")
R_LOG=$(ratio "$GWLOG" "$GW")
echo
[ "$ROUNDS" = 1 ] || say "median of $ROUNDS rounds (req/s: each target's median; ratios: the median of each round's ratio):"
printf 'throughput ratios: gateway/nginx %.2f   gateway/direct %.2f   gateway/oauth2-proxy %.2f\n' "$R_NGINX" "$R_DIRECT" "$R_O2P"
printf '         [ref]     gateway/go-reverseproxy %.2f   gateway with access log / without %.2f\n' "$R_GOP" "$R_LOG"
printf '         [ref]     gateway/go-syncproxy %.2f   go-syncproxy/go-reverseproxy %.2f   go-syncproxy/nginx %.2f\n' \
  "$R_SYP" "$(ratio "$SYP" "$GOP")" "$(ratio "$SYP" "$NGINX")"
say "(the gateway's downstream token stayed cached: 1 exchange in all, made by the warm-up request)"

# ---------- 4(i): p99 added over direct at half the gateway's max ----------
RATE=$(calc "int(${RPS[$GW]} / 2)")
step "4(i) latency added at half the gateway's max throughput: open loop at $RATE req/s for $RATE_DURATION (after 2s warm-up), $RATE_ROUNDS rounds of direct, the two bare Go proxies and the gateway"
rate_run() { # rate_run NAME URL [GATEWAY_ADMIN]: open loop at $RATE; prints the gateway's GC count too
  local out gc0=0 gc1=0 heap=""
  [ -z "${3:-}" ] || gc0=$(metric "$3" go_gc_duration_seconds_count)
  out=$("$BT" rate -url "$2" -token "$TOKEN" -rate "$RATE" -conns "$CONNS" -duration "$RATE_DURATION" -warmup 2s) || die "open-loop load on $1"
  if [ -n "${3:-}" ]; then
    gc1=$(metric "$3" go_gc_duration_seconds_count)
    heap=$(printf '   [gateway: %d GCs during warm-up + run, heap in use %.0f MiB]' "$(calc "$gc1 - $gc0")" "$(calc "$(metric "$3" go_memstats_heap_inuse_bytes) / 1048576")")
  fi
  echo "$out" >"$TMP/rate-$(printf '%s' "$1" | tr -c 'A-Za-z0-9.-' '_').json"
  printf '%-12s sent %6d (%.0f/s)  ok %6d  non-2xx %d  errors %d   p50 %6.3f  p90 %6.3f  p99 %6.3f  p99.9 %6.3f  max %7.3f ms   (sender lateness p99 %.3f ms)%s\n' \
    "$1" "$(jget "$out" .sent)" "$(jget "$out" .achieved_rate)" "$(jget "$out" .ok)" "$(jget "$out" .non2xx)" "$(jget "$out" .errors)" \
    "$(jget "$out" .latency.p50_ms)" "$(jget "$out" .latency.p90_ms)" "$(jget "$out" .latency.p99_ms)" \
    "$(jget "$out" .latency.p999_ms)" "$(jget "$out" .latency.max_ms)" "$(jget "$out" .lateness.p99_ms)" "$heap"
  [ "$(jget "$out" '.not_ok // {} | length')" = 0 ] || echo "             non-2xx by status: $(jget "$out" '.not_ok | to_entries | map("\(.key) ×\(.value)") | join(", ")')"
  RATE_OUT=$out
}
# Rounds of direct, the bare Go proxies, then the gateway: the machine's noise
# moves from minute to minute, so the added latency is taken per round and
# the median round reported.
declare -a ROUND_P99 ROUND_GOP_P99 ROUND_SYP_P99 ROUND_P50 ROUND_VS_GOP ROUND_DIRECT ROUND_GW
RATE_ERRS=0; GOP_RATE_ERRS=0; SYP_RATE_ERRS=0
# failed JSON...: the non-2xx answers and errors of open-loop runs.
failed() { local o n=0; for o in "$@"; do n=$(calc "$n + $(jget "$o" .non2xx) + $(jget "$o" .errors)"); done; echo "$n"; }
for r in $(seq "$RATE_ROUNDS"); do
  rate_run "direct #$r" "$UPSTREAM$PATH_Q"; d=$RATE_OUT
  rate_run "goproxy #$r" "http://127.0.0.1:$GOP_PORT$PATH_Q"; gp=$RATE_OUT
  rate_run "syncproxy #$r" "http://127.0.0.1:$SYP_PORT$PATH_Q"; sp=$RATE_OUT
  rate_run "gateway #$r" "http://$G1$PATH_Q" "$G1_ADMIN"; g=$RATE_OUT
  ROUND_DIRECT[$r]=$d; ROUND_GW[$r]=$g
  ROUND_P99[$r]=$(calc "$(jget "$g" .latency.p99_ms) - $(jget "$d" .latency.p99_ms)")
  ROUND_GOP_P99[$r]=$(calc "$(jget "$gp" .latency.p99_ms) - $(jget "$d" .latency.p99_ms)")
  ROUND_SYP_P99[$r]=$(calc "$(jget "$sp" .latency.p99_ms) - $(jget "$d" .latency.p99_ms)")
  ROUND_P50[$r]=$(calc "$(jget "$g" .latency.p50_ms) - $(jget "$d" .latency.p50_ms)")
  ROUND_VS_GOP[$r]=$(calc "$(jget "$g" .latency.p99_ms) - $(jget "$gp" .latency.p99_ms)")
  RATE_ERRS=$(calc "$RATE_ERRS + $(failed "$g" "$d")")
  GOP_RATE_ERRS=$(calc "$GOP_RATE_ERRS + $(failed "$gp")"); SYP_RATE_ERRS=$(calc "$SYP_RATE_ERRS + $(failed "$sp")")
  printf 'round %d: added by the gateway p50 %+.3f ms, p99 %+.3f ms; [ref] by a bare Go reverse proxy p50 %+.3f ms, p99 %+.3f ms; [ref] by the bare synchronous leg p50 %+.3f ms, p99 %+.3f ms\n' "$r" \
    "${ROUND_P50[$r]}" "${ROUND_P99[$r]}" \
    "$(calc "$(jget "$gp" .latency.p50_ms) - $(jget "$d" .latency.p50_ms)")" "${ROUND_GOP_P99[$r]}" \
    "$(calc "$(jget "$sp" .latency.p50_ms) - $(jget "$d" .latency.p50_ms)")" "${ROUND_SYP_P99[$r]}"
done
GOP_ADDED_P99=$(for r in $(seq "$RATE_ROUNDS"); do echo "${ROUND_GOP_P99[$r]}"; done | sort -g | awk -v n="$RATE_ROUNDS" 'NR == int((n + 1) / 2)')
SYP_ADDED_P99=$(for r in $(seq "$RATE_ROUNDS"); do echo "${ROUND_SYP_P99[$r]}"; done | sort -g | awk -v n="$RATE_ROUNDS" 'NR == int((n + 1) / 2)')
# The issue-13 latency targets, over every round: the median of the gateway's
# added p50, and of its p99 minus the bare httputil proxy's in the same round.
MED_ADDED_P50=$(median "${ROUND_P50[@]}")
MED_VS_GOP=$(median "${ROUND_VS_GOP[@]}")
VS_GOP_OK=$(for r in $(seq "$RATE_ROUNDS"); do echo "${ROUND_VS_GOP[$r]}"; done | awk '$1 <= 0 { n++ } END { print n + 0 }')
MEDIAN_ROUND=$(for r in $(seq "$RATE_ROUNDS"); do echo "${ROUND_P99[$r]} $r"; done | sort -g | awk -v n="$RATE_ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
RATE_DIRECT=${ROUND_DIRECT[$MEDIAN_ROUND]}; RATE_GW=${ROUND_GW[$MEDIAN_ROUND]}
ADDED_P99=${ROUND_P99[$MEDIAN_ROUND]}
ADDED_P50=$(calc "$(jget "$RATE_GW" .latency.p50_ms) - $(jget "$RATE_DIRECT" .latency.p50_ms)")
printf 'added by the gateway (median of %d rounds: round %d): p50 %+.3f ms, p99 %+.3f ms%s\n' "$RATE_ROUNDS" "$MEDIAN_ROUND" "$ADDED_P50" "$ADDED_P99" "$([ "$RATE_ERRS" = 0 ] || echo "   <-- RUN HAD $RATE_ERRS ERRORS")"
printf '[ref] added by a bare Go httputil.ReverseProxy at the same rate (median of %d rounds): p99 %+.3f ms\n' "$RATE_ROUNDS" "$GOP_ADDED_P99"
printf '[ref] added by the bare synchronous leg (proxy.LegFast) at the same rate (median of %d rounds): p99 %+.3f ms%s\n' "$RATE_ROUNDS" "$SYP_ADDED_P99" \
  "$([ "$(calc "$GOP_RATE_ERRS + $SYP_RATE_ERRS")" = 0 ] || echo "   <-- the bare proxies' runs had $GOP_RATE_ERRS (httputil) and $SYP_RATE_ERRS (synchronous leg) ERRORS")"
printf 'added by the gateway, median over the %d rounds: p50 %+.3f ms; p99 minus the bare httputil proxy'"'"'s of the same round %+.3f ms (%s; no worse in %d of %d rounds)\n' \
  "$RATE_ROUNDS" "$MED_ADDED_P50" "$MED_VS_GOP" "$(list '%+.3f' "${ROUND_VS_GOP[@]}")" "$VS_GOP_OK" "$RATE_ROUNDS"

# ---------- 4(iii): burst deduplication ----------
step "4(iii) burst: $BURST concurrent requests from one brand-new token"
B_EX0=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total')
B_SH0=$(metric "$G1_ADMIN" 'obo_gateway_token_cache_shared_exchanges_total')
B_TEN0=$(tenant_obo_count)
BURST_OUT=$("$BT" burst -url "http://$G1$PATH_Q" -control "$CONTROL" -n "$BURST") || die "burst"
B_EX1=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total')
B_SH1=$(metric "$G1_ADMIN" 'obo_gateway_token_cache_shared_exchanges_total')
B_TEN1=$(tenant_obo_count)
BURST_EX=$(calc "$B_EX1 - $B_EX0"); BURST_TEN=$(calc "$B_TEN1 - $B_TEN0"); BURST_SH=$(calc "$B_SH1 - $B_SH0")
BURST_OK=$(jget "$BURST_OUT" .ok)
printf 'answers: %s (released within %.3f ms; latency p50 %.2f ms, max %.2f ms)\n' \
  "$(jget "$BURST_OUT" '.statuses | to_entries | map("\(.value)× \(.key)") | join(", ")')" \
  "$(jget "$BURST_OUT" .spread_ms)" "$(jget "$BURST_OUT" .latency.p50_ms)" "$(jget "$BURST_OUT" .latency.max_ms)"
say "exchanges: gateway metric obo_gateway_obo_exchanges_total +$BURST_EX; tenant's On-Behalf-Of records +$BURST_TEN; requests that shared an exchange +$BURST_SH"

# ---------- 4(ii): cold path ----------
step "4(ii) cold path: $COLD_USERS distinct users (fresh tokens), $COLD_CONC in flight, each needing an exchange"
C_EX0=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total{result="success"}')
C_TEN0=$(tenant_obo_count)
COLD_OUT=$("$BT" users -url "http://$G1$PATH_Q" -control "$CONTROL" -n "$COLD_USERS" -c "$COLD_CONC") || die "cold path"
C_EX1=$(metric "$G1_ADMIN" 'obo_gateway_obo_exchanges_total{result="success"}')
C_TEN1=$(tenant_obo_count)
COLD_EX=$(calc "$C_EX1 - $C_EX0"); COLD_TEN=$(calc "$C_TEN1 - $C_TEN0")
COLD_ERRS=$(calc "$(jget "$COLD_OUT" .non2xx) + $(jget "$COLD_OUT" .errors)")
printf 'first requests: %d in %.2f s = %.1f exchanges/s   latency p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms   non-2xx %d, errors %d%s\n' \
  "$(jget "$COLD_OUT" .users)" "$(jget "$COLD_OUT" .wall_s)" "$(jget "$COLD_OUT" .per_s)" \
  "$(jget "$COLD_OUT" .latency.p50_ms)" "$(jget "$COLD_OUT" .latency.p90_ms)" "$(jget "$COLD_OUT" .latency.p99_ms)" \
  "$(jget "$COLD_OUT" .latency.max_ms)" "$(jget "$COLD_OUT" .non2xx)" "$(jget "$COLD_OUT" .errors)" \
  "$([ "$COLD_ERRS" = 0 ] || echo "   <-- RUN HAD ERRORS")"
say "exchanges: gateway metric +$COLD_EX (success); tenant's On-Behalf-Of records +$COLD_TEN (want $COLD_USERS each: one per user)"
say "(tokens minted in-process by benchenv beforehand, in $(jget "$COLD_OUT" .mint_s) s, not counted)"
stop_pid "$G1_PID"

# ---------- 4(iv): memory per cached user, and hit cost at 100 vs M entries ----------
step "4(iv) memory per cached user ($MEM_USERS users) and cache-hit cost at 100 vs $MEM_USERS entries (a fresh gateway)"
start_gateway gateway-mem warn || die "gateway-mem did not start: $(tail -5 "$TMP/gateway-mem.log")"
G2_PID=$GW_PID; G2=$GW_ADDR; G2_ADMIN=$GW_ADMIN
check_200 gateway-mem "http://$G2$PATH_Q"
"$BT" users -url "http://$G2$PATH_Q" -control "$CONTROL" -n 99 -c 8 >"$TMP/users-99.json" || die "99 users"
E100=$(metric "$G2_ADMIN" obo_gateway_token_cache_entries)
[ "$E100" = 100 ] || die "the downstream-token cache holds $E100 entries after 100 users (want 100)"
run_wrk "hot token, 100 entries" "http://$G2$PATH_Q"
H100="hot token, 100 entries"
RSS0=$(rss_kib "$G2_PID"); HEAP0=$(metric "$G2_ADMIN" go_memstats_heap_inuse_bytes)
B0=$(metric "$G2_ADMIN" obo_gateway_token_cache_bytes)
FILL_OUT=$("$BT" users -url "http://$G2$PATH_Q" -control "$CONTROL" -n "$MEM_USERS" -c "$FILL_CONC") || die "filling the cache"
FILL_ERRS=$(calc "$(jget "$FILL_OUT" .non2xx) + $(jget "$FILL_OUT" .errors)")
[ "$FILL_ERRS" = 0 ] || say "WARNING: $FILL_ERRS of the $MEM_USERS first requests failed: $(jget "$FILL_OUT" .statuses)"
sleep 1
RSS1=$(rss_kib "$G2_PID"); HEAP1=$(metric "$G2_ADMIN" go_memstats_heap_inuse_bytes)
E1=$(metric "$G2_ADMIN" obo_gateway_token_cache_entries); B1=$(metric "$G2_ADMIN" obo_gateway_token_cache_bytes)
EVICT=$(metric "$G2_ADMIN" 'obo_gateway_token_cache_evictions_total{reason="capacity"}')
# What holds the memory, for --keep: go tool pprof -sample_index=inuse_space bin/gateway gateway-mem.heap.pprof
curl -sS -o "$TMP/gateway-mem.heap.pprof" "http://$G2_ADMIN/debug/pprof/heap" || say "WARNING: no heap profile"
MEM_N=$(calc "$E1 - $E100")
PER_USER=$(calc "($RSS1 - $RSS0) * 1024 / $MEM_N")
HEAP_PER_USER=$(calc "($HEAP1 - $HEAP0) / $MEM_N")
EST_PER_USER=$(calc "($B1 - $B0) / $MEM_N")
RSS100K=$(calc "($RSS0 * 1024 + $PER_USER * (100000 - 100)) / 1048576")
printf 'pushed %d users in %.1f s (%.0f/s, %d failed); cache entries %d -> %d, capacity evictions %d\n' \
  "$MEM_USERS" "$(jget "$FILL_OUT" .wall_s)" "$(jget "$FILL_OUT" .per_s)" "$FILL_ERRS" "$E100" "$E1" "$EVICT"
printf 'VmRSS %.1f MiB -> %.1f MiB: %.0f bytes per cached user (Go heap in use: %.0f B/user; cache estimate obo_gateway_token_cache_bytes: %.0f B/user)\n' \
  "$(calc "$RSS0 / 1024")" "$(calc "$RSS1 / 1024")" "$PER_USER" "$HEAP_PER_USER" "$EST_PER_USER"
if [ "$MEM_USERS" -ge 100000 ]; then
  RSS100K=$(calc "$RSS1 / 1024"); MEM_HOW="measured with $E1 users"
  printf '%d cached users: %.0f MiB RSS (measured)\n' "$E1" "$RSS100K"
else
  MEM_HOW="extrapolated from $MEM_USERS users"
  printf '100,000 cached users: %.0f MiB RSS (%s: RSS at 100 users + 99,900 x bytes per user)\n' "$RSS100K" "$MEM_HOW"
fi
[ "$EVICT" = 0 ] || say "WARNING: the cache evicted $EVICT entries (cache budget $CACHE_BUDGET): the per-user figure is too low"
run_wrk "hot token, $E1 entries" "http://$G2$PATH_Q"
HM="hot token, $E1 entries"
HIT_RATIO=$(calc "${RPS[$HM]} / ${RPS[$H100]}")
printf 'cache-hit throughput with %d entries / with 100 entries: %.2f\n' "$E1" "$HIT_RATIO"
say "[ref] the open-loop run of 4(i) again ($RATE req/s), now with $E1 cached users:"
rate_run gateway "http://$G2$PATH_Q" "$G2_ADMIN"; RATE_BIG=$RATE_OUT
printf '[ref] p99 with %d cached users %.3f ms (4(i), few cached users: %.3f ms)\n' "$E1" "$(jget "$RATE_BIG" .latency.p99_ms)" "$(jget "$RATE_GW" .latency.p99_ms)"
stop_pid "$G2_PID"

# ---------- 4(v): Redis down ----------
step "4(v) Redis down: hot path and new users with cache.redis configured, Redis up then stopped"
REDIS_PORT=$("$BT" freeport); mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" \
  --logfile "$TMP/redis/redis.log" >"$TMP/redis/stdout" 2>&1 &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
for i in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not start: $(tail -5 "$TMP/redis/redis.log")"
REDIS_KEYS="k1:$(head -c32 /dev/urandom | base64)"
REDIS_RAN=0
if start_gateway gateway-redis warn "127.0.0.1:$REDIS_PORT" "$REDIS_KEYS"; then
  REDIS_RAN=1
  G3_PID=$GW_PID; G3=$GW_ADDR; G3_ADMIN=$GW_ADMIN
  check_200 gateway-redis "http://$G3$PATH_Q"
  sleep 0.5
  say "redis-server on 127.0.0.1:$REDIS_PORT holds $(redis-cli -p "$REDIS_PORT" dbsize) key(s) after the first exchange"
  run_wrk "redis up: hot token" "http://$G3$PATH_Q"
  RU="redis up: hot token"
  UP_COLD=$("$BT" users -url "http://$G3$PATH_Q" -control "$CONTROL" -n "$REDIS_COLD_USERS" -c "$COLD_CONC") || die "new users, Redis up"
  printf '%-32s %d new users: ok %d, non-2xx %d, errors %d   latency p50 %.2f  p99 %.2f ms\n' "redis up: new users" \
    "$REDIS_COLD_USERS" "$(jget "$UP_COLD" .ok)" "$(jget "$UP_COLD" .non2xx)" "$(jget "$UP_COLD" .errors)" \
    "$(jget "$UP_COLD" .latency.p50_ms)" "$(jget "$UP_COLD" .latency.p99_ms)"
  stop_pid "$REDIS_PID"
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && die "redis-server still answers after being stopped"
  say "redis-server stopped"
  run_wrk "redis down: hot token" "http://$G3$PATH_Q"
  RD="redis down: hot token"
  DOWN_COLD=$("$BT" users -url "http://$G3$PATH_Q" -control "$CONTROL" -n "$REDIS_COLD_USERS" -c "$COLD_CONC") || die "new users, Redis down"
  printf '%-32s %d new users: ok %d, non-2xx %d, errors %d   latency p50 %.2f  p99 %.2f ms\n' "redis down: new users" \
    "$REDIS_COLD_USERS" "$(jget "$DOWN_COLD" .ok)" "$(jget "$DOWN_COLD" .non2xx)" "$(jget "$DOWN_COLD" .errors)" \
    "$(jget "$DOWN_COLD" .latency.p50_ms)" "$(jget "$DOWN_COLD" .latency.p99_ms)"
  REDIS_FAILED=$(calc "${ERRS[$RD]} + $(jget "$DOWN_COLD" .non2xx) + $(jget "$DOWN_COLD" .errors)")
  REDIS_RATIO=$(calc "${RPS[$RD]} / ${RPS[$RU]}")
  L2=$("$BT" metric "http://$G3_ADMIN/metrics" \
    'obo_gateway_token_cache_l2_requests_total{op="get",result="hit"}' 'obo_gateway_token_cache_l2_requests_total{op="get",result="miss"}' \
    'obo_gateway_token_cache_l2_requests_total{op="get",result="error"}' 'obo_gateway_token_cache_l2_requests_total{op="get",result="skipped"}' \
    'obo_gateway_token_cache_l2_requests_total{op="set",result="stored"}' 'obo_gateway_token_cache_l2_requests_total{op="set",result="error"}' \
    'obo_gateway_token_cache_l2_requests_total{op="set",result="skipped"}')
  printf 'hot-path throughput, Redis down / up: %.2f; failed requests while Redis was down: %d\n' "$REDIS_RATIO" "$REDIS_FAILED"
  say "gateway's Redis calls (obo_gateway_token_cache_l2_requests_total): $(jq -r 'to_entries | map("\(.key | capture("op=\"(?<o>[a-z]+)\",result=\"(?<r>[a-z_]+)\"") | "\(.o) \(.r)") \(.value)") | join(", ")' <<<"$L2")"
  stop_pid "$G3_PID"
elif grep -q "not wired yet" "$TMP/gateway-redis.log"; then
  say "SKIPPED: the gateway refuses cache.redis (\"not wired yet\"): $(grep -o 'gateway:.*' "$TMP/gateway-redis.log" | head -1)"
else
  die "the gateway with cache.redis did not start: $(tail -5 "$TMP/gateway-redis.log")"
fi

# ---------- 5: summary ----------
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo MISS; fi; }
step "summary (targets of the issue; measured on this machine in this run)"
printf '%-58s | %-52s | %s\n' "target" "measured" "verdict"
printf '%s\n' "-----------------------------------------------------------+------------------------------------------------------+--------"
ok=$(awk -v r="$R_NGINX" -v e="${ERRS[$GW]}" 'BEGIN{print (r >= 0.8 && e == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "hot path >= 0.8x nginx (throughput)" \
  "$(printf '%.2fx (%.0f vs %.0f req/s%s)%s' "$R_NGINX" "${RPS[$GW]}" "${RPS[$NGINX]}" "$([ "$ROUNDS" = 1 ] || echo "; medians of $ROUNDS rounds")" "$([ "${ERRS[$GW]}" = 0 ] || echo ", ERRORS")")" "$(verdict "$ok")"
ok=$(awk -v a="$ADDED_P99" -v e="$RATE_ERRS" 'BEGIN{print (a <= 2 && e == 0) ? 1 : 0}')
v=$(verdict "$ok")
# The gateway's path includes the direct one: a negative difference means the machine's noise decided it.
awk -v a="$ADDED_P99" 'BEGIN { exit !(a < 0) }' && v="NOISY (direct slower than through the gateway: rerun)"
printf '%-58s | %-52s | %s\n' "p99 added over direct <= 2 ms at half max throughput" \
  "$(printf '%+.3f ms at %d req/s (p99 %.3f vs %.3f ms)' "$ADDED_P99" "$RATE" "$(jget "$RATE_GW" .latency.p99_ms)" "$(jget "$RATE_DIRECT" .latency.p99_ms)")" "$v"
printf '%-58s | %-52s | %s\n' "[ref, not a target] p99 added by a bare Go reverse proxy" "$(printf '%+.3f ms at %d req/s (median of %d rounds)' "$GOP_ADDED_P99" "$RATE" "$RATE_ROUNDS")" "-"
printf '%-58s | %-52s | %s\n' "[ref, not a target] p99 added by the bare synchronous leg" "$(printf '%+.3f ms at %d req/s (median of %d rounds)' "$SYP_ADDED_P99" "$RATE" "$RATE_ROUNDS")" "-"
ok=$([ "$BURST_EX" = 1 ] && [ "$BURST_TEN" = 1 ] && [ "$BURST_OK" = "$BURST" ] && [ "$COLD_EX" = "$COLD_USERS" ] && [ "$COLD_TEN" = "$COLD_USERS" ] && echo 1 || echo 0)
printf '%-58s | %-52s | %s\n' "exactly one exchange per (token, scopes) under concurrency" \
  "$(printf '%s concurrent: %s exchange(s) (tenant: %s), %s/%s ok; %s users: %s' "$BURST" "$BURST_EX" "$BURST_TEN" "$BURST_OK" "$BURST" "$COLD_USERS" "$COLD_EX")" "$(verdict "$ok")"
ok=$(awk -v m="$RSS100K" -v ev="$EVICT" 'BEGIN{print (m <= 400 && ev == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "100k cached users within 400 MiB RSS" \
  "$(printf '%.0f MiB (%s; %.0f B/user)' "$RSS100K" "$MEM_HOW" "$PER_USER")" "$(verdict "$ok")"
ok=$(awk -v r="$HIT_RATIO" -v e1="${ERRS[$H100]}" -v e2="${ERRS[$HM]}" 'BEGIN{print (r >= 0.9 && e1 + e2 == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "cache hit costs the same at 100 vs $MEM_USERS entries" \
  "$(printf '%.2fx throughput (%.0f vs %.0f req/s; same = >= 0.90x)' "$HIT_RATIO" "${RPS[$HM]}" "${RPS[$H100]}")" "$(verdict "$ok")"
printf '%-58s | %-52s | %s\n' "[ref, not a target] p99 at $RATE req/s: $E1 vs few cached users" \
  "$(printf '%.3f ms vs %.3f ms' "$(jget "$RATE_BIG" .latency.p99_ms)" "$(jget "$RATE_GW" .latency.p99_ms)")" "-"
if [ "$REDIS_RAN" = 1 ]; then
  ok=$([ "$REDIS_FAILED" = 0 ] && echo 1 || echo 0)
  printf '%-58s | %-52s | %s\n' "Redis down: no failed requests" \
    "$(printf '%d failed; hot path down/up %.2fx; %d new users ok' "$REDIS_FAILED" "$REDIS_RATIO" "$(jget "$DOWN_COLD" .ok)")" "$(verdict "$ok")"
else
  printf '%-58s | %-52s | %s\n' "Redis down: no failed requests" "not measured: the gateway does not take cache.redis yet" "SKIPPED"
fi
# Issue 13's targets (the fast upstream leg): each the median of this run's rounds.
# errs N: ", ERRORS" when N errors were counted.
errs() { [ "$1" = 0 ] || printf ', %s ERRORS' "$1"; }
e=$(calc "${ERRS[$GW]} + ${ERRS[$NGINX]}")
ok=$(awk -v r="$R_NGINX" -v e="$e" 'BEGIN{print (r >= 0.65 && e == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "[issue 13] gateway/nginx >= 0.65 (throughput)" \
  "$(printf '%.2fx (median of %d rounds: %s)%s' "$R_NGINX" "$ROUNDS" "$(list '%.2f' $(round_ratios "$GW" "$NGINX"))" "$(errs "$e")")" "$(verdict "$ok")"
e=$(calc "${ERRS[$GW]} + ${ERRS[$GOP]}")
ok=$(awk -v r="$R_GOP" -v e="$e" 'BEGIN{print (r >= 1.3 && e == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "[issue 13] throughput >= 1.3x the bare httputil proxy's" \
  "$(printf '%.2fx (median of %d rounds: %s)%s' "$R_GOP" "$ROUNDS" "$(list '%.2f' $(round_ratios "$GW" "$GOP"))" "$(errs "$e")")" "$(verdict "$ok")"
ok=$(awk -v a="$MED_ADDED_P50" -v e="$RATE_ERRS" 'BEGIN{print (a <= 1 && e == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "[issue 13] p50 added <= 1 ms at half max throughput" \
  "$(printf '%+.3f ms at %d req/s (median of %d rounds: %s)%s' "$MED_ADDED_P50" "$RATE" "$RATE_ROUNDS" "$(list '%+.3f' "${ROUND_P50[@]}")" "$(errs "$RATE_ERRS")")" "$(verdict "$ok")"
e=$(calc "$RATE_ERRS + $GOP_RATE_ERRS")
ok=$(awk -v a="$MED_VS_GOP" -v e="$e" 'BEGIN{print (a <= 0 && e == 0) ? 1 : 0}')
printf '%-58s | %-52s | %s\n' "[issue 13] p99 added <= bare httputil proxy's (same round)" \
  "$(printf 'gateway - httputil p99: median %+.3f ms (%s); <= in %d of %d rounds%s' "$MED_VS_GOP" "$(list '%+.3f' "${ROUND_VS_GOP[@]}")" "$VS_GOP_OK" "$RATE_ROUNDS" "$(errs "$e")")" "$(verdict "$ok")"

# Every hot-path target's throughput against both bare Go references (and nginx).
echo
if [ "$ROUNDS" = 1 ]; then
  say "throughput against the references (hot path, the same wrk load; one round):"
else
  say "throughput against the references (hot path, the same wrk load; req/s: median of $ROUNDS rounds; ratios: median of each round's ratio):"
fi
printf '%-30s | %8s | %7s | %17s | %14s | %s\n' "target" "req/s" "/ nginx" "/ go-reverseproxy" "/ go-syncproxy" "errors"
printf '%s\n' "-------------------------------+----------+---------+-------------------+----------------+-------"
for n in "$GW" "$GWLOG" "$SYP" "$GOP" "$NGINX" "$O2P_T" "$DIRECT"; do
  printf '%-30s | %8.0f | %7.2f | %17.2f | %14.2f | %d\n' "$n" "${RPS[$n]}" "$(ratio "$n" "$NGINX")" "$(ratio "$n" "$GOP")" "$(ratio "$n" "$SYP")" "${ERRS[$n]}"
done
