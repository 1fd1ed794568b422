#!/usr/bin/env bash
# ci/container-test.sh — builds OBO Gateway's container image from the
# Dockerfile and proves the image works (docs/container.md, "How CI proves it").
#
# Runs as root on a fresh Debian machine with Go, without a Docker engine or a
# reachable container registry: it installs buildah, podman and runc if
# missing, makes the Dockerfile's builder image locally (busybox + the host's
# Go toolchain + CA certificates, committed as docker.io/library/golang:1.26-bookworm),
# builds the image with `buildah bud --pull-never`, then
#   - checks the image: user 65532:65532, labels, exactly the expected files,
#     no shell, `version` prints the version it was built with;
#   - runs it as production does (read-only root filesystem, no capabilities,
#     no-new-privileges, UID 65532, config and credential mounted read-only)
#     against the local tenant (fakeentra) and a small upstream on the host,
#     and checks /healthz, /readyz, /metrics, a 200 through the On-Behalf-Of
#     exchange (the upstream saw a token for orders-api, not the user's), a
#     401 without a token, and a clean exit (status 0) on SIGTERM.
# Everything (containers, images, storage, processes, files) lives in one
# temporary directory and is removed on exit; KEEP=1 keeps the directory.
# Exits non-zero, printing the container's and the tenant's logs, on failure.
#
# Environment: GOPROXY, GOSUMDB, GONOSUMDB, GOPRIVATE, GONOPROXY, GOINSECURE,
# GOFLAGS are passed to the build when set. KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

T0=$(date +%s)
IMAGE=localhost/obo-gateway:test
BUILDER_IMAGE=docker.io/library/golang:1.26-bookworm   # the Dockerfile's default BUILDER_IMAGE
KEEP=${KEEP:-0}

say() { printf '== %s\n' "$*"; }
elapsed() { echo $(($(date +%s) - $1)); }

# ---------- tools ----------
say "tools"
[ "$(id -u)" = 0 ] || { echo "run as root: buildah and podman here use chroot, vfs and runc as root"; exit 1; }
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
# A static busybox: the builder image has no libc.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
go version
buildah --version
podman --version
GOROOT_HOST=$(go env GOROOT)

# ---------- private container storage and settings ----------
TMP=$(mktemp -d -t obo-gateway-ctest.XXXXXX)
CTR=obo-gateway-ctest-$$
FE_PID=""
UP_PID=""
CONTAINER_STARTED=0
mkdir -p "$TMP/storage" "$TMP/run" "$TMP/podman-tmp" "$TMP/bin"
# Podman and buildah read this instead of /etc/containers/containers.conf:
# no default ulimits (the machine's hard limits may be lower than the
# defaults), logs in a file (no journald), no systemd.
cat >"$TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$TMP/containers.conf
STORE=(--root "$TMP/storage" --runroot "$TMP/run" --storage-driver vfs)
bah() { buildah "${STORE[@]}" "$@"; }
pod() { podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --tmpdir "$TMP/podman-tmp" --events-backend file "$@"; }

cleanup() {
  rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    echo "FAILED (exit $rc)"
    if [ "$CONTAINER_STARTED" = 1 ]; then
      echo "---- container logs ($CTR)"; pod logs "$CTR" 2>&1 | tail -100
      echo "---- container state"; pod inspect --format '{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}' "$CTR" 2>&1
    fi
    if [ -s "$TMP/fe.log" ]; then echo "---- fakeentra stderr"; tail -50 "$TMP/fe.log"; fi
    if [ -s "$TMP/up.log" ]; then echo "---- upstream stderr"; tail -50 "$TMP/up.log"; fi
  fi
  pod rm -f -t 0 "$CTR" >/dev/null 2>&1
  pod rm -af -t 0 >/dev/null 2>&1
  bah rm --all >/dev/null 2>&1
  for pid in $FE_PID $UP_PID; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ "$KEEP" = 1 ]; then
    echo "kept $TMP (storage: --root $TMP/storage --runroot $TMP/run --storage-driver vfs; CONTAINERS_CONF=$TMP/containers.conf)"
  else
    # The storage holds read-only files and, while a container exists, its
    # /dev/shm mount: stay on this file system.
    rm -rf --one-file-system "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------- the builder image ----------
# What the Dockerfile's builder stage needs from golang:1.26-bookworm: a
# shell for RUN, the Go toolchain, the CA bundle it copies into the runtime
# image, and the official image's environment.
say "builder image $BUILDER_IMAGE (busybox + Go from $GOROOT_HOST)"
t=$(date +%s)
bctr=$(bah from scratch)
root=$(bah mount "$bctr")
mkdir -p "$root/bin" "$root/usr/local" "$root/etc/ssl/certs" "$root/tmp" "$root/go" "$root/root"
chmod 1777 "$root/tmp"
install -m 0755 "$(dpkg -L busybox-static | awk '/\/busybox$/ && !found {print; found = 1}')" "$root/bin/busybox"
# Runs busybox with no libc in the tree: fails here if it is not static.
chroot "$root" /bin/busybox --install -s /bin
cp -a "$GOROOT_HOST" "$root/usr/local/go"
rm -rf "$root/usr/local/go/test" "$root/usr/local/go/pkg/obj"   # not needed to build
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
bah unmount "$bctr" >/dev/null
bah config --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env GOLANG_VERSION="$(go env GOVERSION | sed 's/^go//')" --env GOPATH=/go --env GOTOOLCHAIN=local \
  --env HOME=/root --workingdir /go "$bctr"
bah commit -q --rm "$bctr" "$BUILDER_IMAGE" >/dev/null
BASE_S=$(elapsed "$t")
echo "builder image made in ${BASE_S}s"

# ---------- the image ----------
# The builder's `go mod download` reads the host's module download cache,
# mounted read-only and used as the first module proxy (file://), then the
# usual proxy: no module crosses the network twice, and go.sum still checks
# every one. `go mod download` here fills the host's cache on a fresh machine.
# HOST_MODCACHE=0 downloads every module through the proxy instead.
say "image $IMAGE"
VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)
# buildah 1.28 does not set BuildKit's TARGETOS and TARGETARCH itself.
build_args=(--build-arg "VERSION=$VERSION" --build-arg "TARGETOS=$(go env GOOS)" --build-arg "TARGETARCH=$(go env GOARCH)")
for v in GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS; do
  if [ -n "${!v:-}" ]; then build_args+=(--build-arg "$v=${!v}"); fi
done
mount_args=()
if [ "${HOST_MODCACHE:-1}" = 1 ]; then
  go mod download
  proxy=$(go env GOPROXY)
  build_args+=(--build-arg "GOPROXY=file:///host-modcache${proxy:+,$proxy}")
  mount_args+=(--volume "$(go env GOMODCACHE)/cache/download:/host-modcache:ro")
elif [ -n "${GOPROXY:-}" ]; then
  build_args+=(--build-arg "GOPROXY=$GOPROXY")
fi
t=$(date +%s)
bah bud --isolation chroot --pull-never --layers=false "${mount_args[@]}" "${build_args[@]}" \
  -t "$IMAGE" -f Dockerfile . 2>&1 | grep -v -E '^(Copying (blob|config)|Writing manifest|Storing signatures|Getting image source)'
BUILD_S=$(elapsed "$t")
echo "image built in ${BUILD_S}s"
bah rmi "$BUILDER_IMAGE" >/dev/null 2>&1 || true

# ---------- checks on the image ----------
say "image checks"
user=$(pod image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "65532:65532" ] || { echo "image user is '$user', want 65532:65532"; exit 1; }
echo "user: $user"
label=$(pod image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$IMAGE")
[ "$label" = "$VERSION" ] || { echo "label org.opencontainers.image.version is '$label', want '$VERSION'"; exit 1; }
# shellcheck disable=SC2016 # a Go template, not a shell expansion
ports=$(pod image inspect --format '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$IMAGE")
[ "$ports" = "8080/tcp 9090/tcp " ] || { echo "exposed ports are '$ports', want 8080/tcp 9090/tcp"; exit 1; }
# Exactly these files, nothing else (no shell, no package manager).
imgroot=$(pod image mount "$IMAGE")
files=$(cd "$imgroot" && find . -type f -o -type l | sort | tr '\n' ' ')
pod image unmount "$IMAGE" >/dev/null
want="./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./gateway "
[ "$files" = "$want" ] || { echo "image files: $files"; echo "want: $want"; exit 1; }
echo "files: $files"
if pod run --rm --network none --entrypoint /bin/sh "$IMAGE" -c true >/dev/null 2>&1; then
  echo "the image has a shell: /bin/sh ran"; exit 1
fi
echo "no shell: --entrypoint /bin/sh fails"
got=$(pod run --rm --network none --read-only "$IMAGE" version)
[ "$got" = "$VERSION" ] || { echo "gateway version printed '$got', want '$VERSION'"; exit 1; }
echo "version: $got"

# ---------- the local tenant and an upstream on the host ----------
say "local tenant and upstream"
go build -o "$TMP/bin/fakeentra" ./cmd/fakeentra
# The upstream answers with what it received: path and the claims of the
# bearer token (unverified: it only reports what the gateway sent).
mkdir -p "$TMP/upstream"
cat >"$TMP/upstream/main.go" <<'EOF'
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"path": r.URL.Path}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
					var claims map[string]any
					if json.Unmarshal(b, &claims) == nil {
						out["aud"], out["scp"], out["oid"] = claims["aud"], claims["scp"], claims["oid"]
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
		fmt.Fprintln(os.Stderr, r.Method, r.URL.Path)
	}))
}
EOF
(cd "$TMP/upstream" && go mod init ctest-upstream >/dev/null 2>&1 && go build -o "$TMP/bin/upstream" .)

"$TMP/bin/fakeentra" -addr 127.0.0.1:0 -dir "$TMP/fe" >"$TMP/fe.json" 2>"$TMP/fe.log" &
FE_PID=$!
"$TMP/bin/upstream" >"$TMP/up.addr" 2>"$TMP/up.log" &
UP_PID=$!
for _ in $(seq 100); do
  [ -s "$TMP/fe.json" ] && [ -s "$TMP/up.addr" ] && break
  sleep 0.1
done
[ -s "$TMP/fe.json" ] || { echo "fakeentra did not start"; exit 1; }
[ -s "$TMP/up.addr" ] || { echo "the upstream did not start"; exit 1; }
FE=$TMP/fe.json
AUTHORITY=$(jq -r .authority "$FE")
AUTHORITY_HOST=${AUTHORITY%/*}
TENANT_ID=$(jq -r .tenant_id "$FE")
TOKEN_ENDPOINT=$(jq -r .token_endpoint "$FE")
CA=$(jq -r .ca_file "$FE")
GATEWAY_ID=$(jq -r .apps.gateway.client_id "$FE")
FRONTEND_ID=$(jq -r .apps.frontend.client_id "$FE")
ORDERS_ID=$(jq -r '.apps["orders-api"].client_id' "$FE")
ALICE_OID=$(jq -r '.users[] | select(.username == "alice@contoso.test") | .object_id' "$FE")
UPSTREAM=http://$(cat "$TMP/up.addr")
echo "tenant: $AUTHORITY"
echo "upstream: $UPSTREAM"

# Two free loopback ports for the gateway (it shares the host's network).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}
API_PORT=$(free_port)
ADMIN_PORT=$(free_port)
while [ "$ADMIN_PORT" = "$API_PORT" ]; do ADMIN_PORT=$(free_port); done

# ---------- the gateway's files, as Kubernetes mounts them ----------
# /etc/obo-gateway (ConfigMap: gateway.yaml and the tenant's CA, world
# readable) and /etc/obo-gateway/credential (Secret: mode 0440, group 65532,
# as fsGroup does).
CONF=$TMP/etc-obo-gateway
CRED=$TMP/credential
mkdir -p "$CONF/credential" "$CRED"
chmod 0755 "$CONF" "$CONF/credential"
install -m 0444 "$CA" "$CONF/ca.pem"
install -m 0440 -o 0 -g 65532 "$(jq -r .apps.gateway.certificate_file "$FE")" "$CRED/gateway.crt.pem"
install -m 0440 -o 0 -g 65532 "$(jq -r .apps.gateway.key_file "$FE")" "$CRED/gateway.key.pem"
chown 0:65532 "$CRED"
chmod 0750 "$CRED"
# The route's upstream is set by its environment variable (below), to prove
# the variables reach the gateway: the file's value would answer 502.
cat >"$CONF/gateway.yaml" <<EOF
# Written by ci/container-test.sh: the image against the local tenant.
listen: 127.0.0.1:$API_PORT
admin_listen: 127.0.0.1:$ADMIN_PORT
shutdown_grace: 5s
log_level: info
entra:
  tenant_id: $TENANT_ID
  client_id: $GATEWAY_ID
  authority_host: $AUTHORITY_HOST
  instance_discovery: false
  audiences: [api://obo-gateway]
  ca_file: /etc/obo-gateway/ca.pem
  certificate:
    path: /etc/obo-gateway/credential/gateway.crt.pem
    key_path: /etc/obo-gateway/credential/gateway.key.pem
routes:
  - name: orders
    path_prefix: /orders
    upstream: http://127.0.0.1:1
    downstream_scopes: [api://orders-api/Orders.Read]
    required_scopes: [access_as_user]
EOF
chmod 0444 "$CONF/gateway.yaml"

# ---------- run it as production does ----------
say "gateway container"
# --read-only-tmpfs=false: not even /tmp, /var/tmp, /run are writable.
pod run -d --name "$CTR" \
  --network host \
  --read-only --read-only-tmpfs=false \
  --cap-drop ALL --security-opt no-new-privileges \
  --user 65532:65532 \
  -v "$CONF:/etc/obo-gateway:ro" \
  -v "$CRED:/etc/obo-gateway/credential:ro" \
  -e "OBO_GATEWAY_ROUTE_ORDERS_UPSTREAM=$UPSTREAM" \
  "$IMAGE" >/dev/null
CONTAINER_STARTED=1
t=$(date +%s)

running() { [ "$(pod inspect --format '{{.State.Running}}' "$CTR" 2>/dev/null)" = true ]; }
wait_ok() { # URL: polls for a 200 for up to 30 s, failing fast if the container stops
  local url=$1
  for _ in $(seq 150); do
    running || { echo "the container stopped while waiting for $url"; return 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url")" = 200 ] && return 0
    sleep 0.2
  done
  echo "$url did not answer 200 within 30s"; return 1
}
ADMIN=http://127.0.0.1:$ADMIN_PORT
GW=http://127.0.0.1:$API_PORT
wait_ok "$ADMIN/healthz"
echo "/healthz 200"
wait_ok "$ADMIN/readyz"
echo "/readyz 200 ($(elapsed "$t")s after start)"
# The process, seen from the host: UID and GID 65532, no capabilities,
# no_new_privs.
pid=$(pod inspect --format '{{.State.Pid}}' "$CTR")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
caps=$(awk '/^Cap(Eff|Prm|Bnd):/ {printf "%s", $2}' "/proc/$pid/status")
nnp=$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")
[ "$uids $gids" = "65532 65532 65532 65532 65532 65532 65532 65532" ] || { echo "process uids '$uids' gids '$gids', want 65532"; exit 1; }
[ "$caps" = 000000000000000000000000000000000000000000000000 ] || { echo "process capabilities (eff, prm, bnd): $caps, want none"; exit 1; }
[ "$nnp" = 1 ] || { echo "process NoNewPrivs: $nnp, want 1"; exit 1; }
echo "process: uid/gid 65532, no capabilities, no_new_privs"
# (Whole answers are read before grep: grep -q stopping early would make the
# writer fail under pipefail.)
curl -sSf -o "$TMP/metrics.txt" "$ADMIN/metrics"
grep -q '^obo_gateway_' "$TMP/metrics.txt" || { echo "/metrics has no obo_gateway_ series"; exit 1; }
echo "/metrics serves obo_gateway_*"

TOKEN=$(curl -sS --fail-with-body --cacert "$CA" "$TOKEN_ENDPOINT" \
  -d grant_type=password -d client_id="$FRONTEND_ID" \
  -d username=alice@contoso.test --data-urlencode 'password=Passw0rd!demo' \
  -d 'scope=api://obo-gateway/access_as_user' | jq -r .access_token)
if [ -z "$TOKEN" ] || [ "$TOKEN" = null ]; then echo "no token from the tenant"; exit 1; fi

code=$(curl -sS -o "$TMP/orders.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$GW/orders/items")
[ "$code" = 200 ] || { echo "GET /orders/items with a token: $code, want 200"; cat "$TMP/orders.json"; exit 1; }
jq -e --arg aud "$ORDERS_ID" --arg oid "$ALICE_OID" \
  '.path == "/orders/items" and .aud == $aud and .scp == "Orders.Read" and .oid == $oid' "$TMP/orders.json" >/dev/null \
  || { echo "the upstream did not get alice's token for orders-api:"; cat "$TMP/orders.json"; exit 1; }
echo "GET /orders/items with alice's token: 200, upstream got $(jq -c '{aud, scp}' "$TMP/orders.json")"

code=$(curl -sS -o /dev/null -w '%{http_code}' "$GW/orders/items")
[ "$code" = 401 ] || { echo "GET /orders/items without a token: $code, want 401"; exit 1; }
echo "GET /orders/items without a token: 401"

# ---------- graceful shutdown ----------
say "SIGTERM"
t=$(date +%s)
pod stop -t 30 "$CTR" >/dev/null
status=$(pod inspect --format '{{.State.ExitCode}}' "$CTR")
[ "$status" = 0 ] || { echo "exit status after SIGTERM: $status, want 0"; exit 1; }
pod logs "$CTR" >"$TMP/gateway.log" 2>&1
grep -q '"gateway stopped"' "$TMP/gateway.log" || { echo "no \"gateway stopped\" in the logs"; exit 1; }
echo "stopped in $(elapsed "$t")s, exit status 0"
CONTAINER_STARTED=0

# ---------- summary ----------
say "summary"
size=$(pod image inspect --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE ($VERSION): $((size / 1024 / 1024)) MiB ($size bytes)"
echo "builder image: ${BASE_S}s; image build: ${BUILD_S}s; total: $(elapsed "$T0")s"
echo "PASS"
