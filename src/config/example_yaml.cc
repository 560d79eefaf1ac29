// See options.h: the example file --help prints (the tests load it).
#include "config/options.h"

namespace cachecar::config {

const char kExampleYaml[] = R"(# /etc/cachecar/cachecar.yaml
listen:
  - 127.0.0.1:50051
  - unix:///run/cachecar/cachecar.sock
probe_listen: 0.0.0.0:50052   # kubelet gRPC probes
metrics_listen: 0.0.0.0:9464  # Prometheus
max_bytes: 512MiB
shards: 32
eviction: s3fifo
local_read_path: /run/cachecar-local/cache  # docs/LOCAL_READS.md
max_key_bytes: 1KiB
max_value_bytes: 1MiB
max_message_bytes: 4MiB
max_batch_keys: 1000
polling_threads: 1
workers: 8
worker_queue: 10000
max_watchers: 64
watch_queue_bytes: 1MiB
max_connections: 1024
store: postgres
# The DSN, or postgres_dsn_file: /etc/cachecar/secret/dsn (a mounted Secret)
postgres_dsn: host=db.internal dbname=app user=cachecar sslmode=require
postgres_pool_size: 8
postgres_connect_timeout: 5s
postgres_query_timeout: 5s
postgres_prepared_statements: true  # false behind PgBouncer
postgres_table: cachecar_entries
postgres_outbox_inline_max: 1KiB
postgres_tombstone_retention: 24h
migrate: false
kafka_brokers: kafka-0.kafka:9092,kafka-1.kafka:9092
sync_topic: cachecar-sync
replica_id: ""          # empty: hostname-pid (the pod name in Kubernetes)
max_staleness: 2s
stale_reads: bypass
sync_inline_max: 1KiB
outbox_relay_delay: 500ms
min_version_wait: 1s    # a min_version read waits this long for the event
audit_rate: 10          # entries checked against PostgreSQL per second
outbox_relays: 2        # replicas relaying the outbox at a time
kafka_properties:
  security.protocol: SSL
shutdown_grace: 15s
warm_start_file: /var/cache/cachecar/warm  # on an emptyDir
warm_start_rate: 50000  # keys per second reloaded at most
log_level: info
log_format: json
namespaces:
  - name: sessions
    ttl: 30m
    negative_ttl: 5s       # "absent" answers are cached for 5 s only
    max_bytes_share: 0.25
  - name: users
    ttl: 10m
    table: app.users       # an existing table: cachecar migrate adds
    key_column: id         # a cachecar_version column and triggers
    value_column: profile
    sync: invalidate       # replicas drop changed keys (no values on Kafka)
  - name: countries
    replicated: true       # every replica holds the whole (small) table
  - name: default   # requests that name no namespace
)";

}  // namespace cachecar::config
