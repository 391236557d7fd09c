# The oauth-edge gateway in a container (docs/operations.md, "In a container").
#
#   docker build -t oauth-edge .
#   docker run --rm -p 8080:8080 -p 9901:9901 --user "$(id -u):$(id -g)" \
#     -v "$PWD/oauth-edge.toml:/etc/oauth-edge/oauth-edge.toml:ro" \
#     -v "$PWD/data:/var/lib/oauth-edge" oauth-edge

FROM rust:1-bookworm AS build
# pingora compiles zlib-ng with cmake; the rest of the toolchain is in the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p oauth-edge-gateway \
 && install -m 0755 target/release/oauth-edge /oauth-edge

FROM debian:bookworm-slim
# CA certificates for upstreams reached over TLS; nothing else is linked dynamically but glibc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/oauth-edge --create-home \
      --shell /usr/sbin/nologin oauth-edge \
 && chmod 0700 /var/lib/oauth-edge
COPY --from=build /oauth-edge /usr/local/bin/oauth-edge
USER oauth-edge
WORKDIR /var/lib/oauth-edge
# The listeners and the admin API as the config names them: listen on 0.0.0.0 inside the
# container (the defaults, 127.0.0.1, are unreachable from outside it).
EXPOSE 8080 9901
ENTRYPOINT ["oauth-edge"]
CMD ["serve", "--config", "/etc/oauth-edge/oauth-edge.toml"]
