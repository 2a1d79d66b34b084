# syntax=docker/dockerfile:1
# The `bench` image: the load generator, `bench merge` and the bundled
# reference server (`bench serve`) in one binary. Used by deploy/kubernetes/
# (docs/distributed.md#kubernetes).
#
#   docker build -t bench:dev .
#   docker build -t bench:dev --build-arg BENCH_GIT_COMMIT=$(git rev-parse HEAD) .
#
# .git is not sent to the build (.dockerignore), so the commit recorded in
# results.json comes from the BENCH_GIT_COMMIT build argument (build.rs).

# Builder and runtime are the same Debian release, so the binary's glibc
# matches. rust-version in Cargo.toml is the minimum; this pins the
# toolchain the image is built with.
ARG RUST_IMAGE=rust:1.95-slim-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS build
ARG BENCH_GIT_COMMIT=
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds (BuildKit);
# target/ is a cache, so the binary is copied out in the same step. Debug
# info is stripped (symbols stay, so panic backtraces still name functions).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ -z "$BENCH_GIT_COMMIT" ]; then unset BENCH_GIT_COMMIT; fi; \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo cargo build --release --locked --bin bench \
    && install -m 0755 target/release/bench /usr/local/bin/bench

FROM ${RUNTIME_IMAGE}
# ca-certificates only, for wss:// targets; the shell and coreutils of the
# base image are used by the Job's start-at step (deploy/kubernetes/).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 bench \
    && useradd --uid 10001 --gid 10001 --home-dir /home/bench --create-home --shell /usr/sbin/nologin bench
COPY --from=build /usr/local/bin/bench /usr/local/bin/bench
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a name lookup.
USER 10001:10001
WORKDIR /home/bench
ENTRYPOINT ["/usr/local/bin/bench"]
CMD ["--help"]
