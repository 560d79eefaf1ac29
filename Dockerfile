# cachecar container image. Build stage: the same dependency script as CI
# (its --build subset), then deploy/docker/build.sh. tests/docker/image_test.sh
# builds this file with podman and runs the image (read-only, uid 65532,
# called with grpcurl); tests/docker/check_image_steps.sh runs the build step
# and checks the runtime package list without any container tool.
# Runtime stage: Debian bookworm-slim with only the shared libraries the
# binary links (deploy/docker/runtime-packages.txt, checked by the same
# test), a non-root user, no shell tools beyond the base image's.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh --build
COPY . .
RUN bash deploy/docker/build.sh /out/cachecar /src/build-image

FROM debian:bookworm-slim
COPY deploy/docker/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
    && grep -v '^#' /tmp/runtime-packages.txt | xargs apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && groupadd --system --gid 65532 cachecar \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin cachecar
COPY --from=build /out/cachecar /usr/local/bin/cachecar
USER 65532:65532
# 50051: gRPC API (loopback by default: the app in the pod is the caller);
# 50052: health probes (probe_listen); 9464: /metrics (metrics_listen).
EXPOSE 50051 50052 9464
ENTRYPOINT ["cachecar"]
CMD ["serve", "--listen", "127.0.0.1:50051"]
