# cachecar container image: build with the same dependency script CI uses,
# run from a slim Debian bookworm with only the runtime libraries.
# (Issue #5 hardens this further: non-root is here already; probes, k8s.)
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh
COPY . .
RUN cmake --preset default && cmake --build build --target cachecar -j"$(nproc)" \
    && strip build/cmd/cachecar/cachecar

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libgrpc++1.51 libprotobuf32 libspdlog1.10 libyaml-cpp0.7 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home cachecar
COPY --from=build /src/build/cmd/cachecar/cachecar /usr/local/bin/cachecar
USER 10001
EXPOSE 50051
# In a pod, listen on the pod's loopback only: the app is the one caller.
ENTRYPOINT ["cachecar"]
CMD ["serve", "--listen", "127.0.0.1:50051"]
