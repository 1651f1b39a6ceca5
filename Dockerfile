# Crest node image: builds the `crest` binary, runs `crest serve` on 0.0.0.0:8080 with its journal in
# /data. Used by infra/deploy/docker-compose.yml (build context: the repository root).
#   docker build -t crest .
#   docker run -p 8080:8080 -v crest-data:/data crest

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY actors actors
COPY brain brain
COPY infra infra
# The consoles and the widget, embedded in the binary (web/tests is the browser test, not served).
COPY web/console web/console
COPY web/vendor web/vendor
COPY web/widget web/widget
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p crest-infra --bin crest \
    && install -D -m 0755 target/release/crest /out/crest

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin crest \
    && mkdir -p /data && chown crest:crest /data
COPY --from=build /out/crest /usr/local/bin/crest
USER crest
VOLUME ["/data"]
EXPOSE 8080
ENV CREST_LOG=info
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
# SIGTERM stops accepting requests, finishes in-flight ones and flushes the journal.
STOPSIGNAL SIGTERM
ENTRYPOINT ["crest"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
