# OBO Gateway's container image: a static gateway binary on an empty base,
# running as an unprivileged user. See docs/container.md.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t obo-gateway .
#
# The image holds the CA bundle, /etc/passwd and /etc/group (user 65532,
# "nonroot") and /gateway; no shell, no package manager. It writes nothing to
# disk, so it runs with a read-only root filesystem.

# The Go toolchain the binary is built with. CI (ci/container-test.sh) makes a
# local image under this exact name, as it cannot pull.
ARG BUILDER_IMAGE=docker.io/library/golang:1.26-bookworm

# The builder runs on the build machine's platform and cross-compiles for the
# target (docker buildx build --platform linux/amd64,linux/arm64).
FROM --platform=${BUILDPLATFORM} ${BUILDER_IMAGE} AS build
WORKDIR /src
# Module download settings, for a private module proxy or private modules
# (e.g. --build-arg GOPROXY=https://goproxy.internal). Empty: Go's defaults.
ARG GOPROXY=""
ARG GOSUMDB=""
ARG GONOSUMDB=""
ARG GOPRIVATE=""
ARG GONOPROXY=""
ARG GOINSECURE=""
ARG GOFLAGS=""
# Dependencies first, in their own layer: it is reused while go.mod and
# go.sum do not change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gateway ./cmd/gateway \
 && mkdir -p /out/etc \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/etc/group

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="obo-gateway" \
      org.opencontainers.image.description="API gateway for Microsoft Entra ID-protected APIs: validates the caller's token, exchanges it On-Behalf-Of, proxies the request" \
      org.opencontainers.image.source="https://github.com/obo-gateway/obo-gateway" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/gateway /gateway
USER 65532:65532
# 8080: the API (listen). 9090: /metrics, /healthz, /readyz (admin_listen).
EXPOSE 8080 9090
ENTRYPOINT ["/gateway"]
CMD ["serve", "-config", "/etc/obo-gateway/gateway.yaml"]
