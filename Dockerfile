# syntax=docker/dockerfile:1
#
# secret-rotator container image.
#
#   docker build -t secret-rotator .
#   docker run -v /path/to/conf.d:/etc/secret-rotator:ro -p 9464:9464 secret-rotator
#
# The daemon listens on 127.0.0.1:9464 by default, which is unreachable from
# outside the container: set `listen = "0.0.0.0:9464"` in the `[daemon]` table
# of the mounted config, and then keep the port on a private network (security
# group / network policy: only the Prometheus scrapers). It serves nothing secret
# and bounds slow clients (5s to send headers, 256 connections), but anyone who
# reaches it can read every metric; see SECURITY.md. AWS credentials come from the default chain (ECS task
# role, IMDS, or AWS_* env vars); nothing is written to disk.
# SIGTERM starts a graceful drain of up to ~2 minutes: give the runtime a
# matching stop timeout (`docker stop -t 150`, ECS `stopTimeout: 120`).

FROM rust:1-slim-bookworm AS builder
WORKDIR /build
# The workspace has two members (the daemon and tools/ecs-sim): cargo needs
# both manifests and sources to resolve it, even when building one package.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY tools ./tools
# Cache mounts keep the crate registry and target dir between builds; the
# binary is copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked -p secret-rotator \
    && install -D -m 0755 target/release/secret-rotator /out/secret-rotator

# glibc + libgcc + CA certificates, no shell, runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="secret-rotator" \
      org.opencontainers.image.description="Rotates AWS Secrets Manager secrets and redeploys the ECS services that consume them" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/secret-rotator /usr/local/bin/secret-rotator
ENV RUST_LOG=info
# uid/gid of distroless "nonroot"; numeric so runtimes can check it is non-root.
USER 65532:65532
VOLUME ["/etc/secret-rotator"]
# /metrics, /healthz, /readyz (see the note on `listen` above).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/secret-rotator"]
CMD ["run", "--config", "/etc/secret-rotator"]
