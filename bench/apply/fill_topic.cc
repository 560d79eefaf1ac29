// Fills a sync topic with encoded UPSERT events (sync.proto SyncEvent),
// keyed namespace NUL key like cachecar's own, so they spread over the
// topic's partitions by key: the end-to-end apply-throughput bench
// (bench/apply.sh) stops a replica, fills its topic, lets it go on and
// reads from its metrics how fast it applied them.
//
//   cachecar_fill_topic BOOTSTRAP TOPIC EVENTS KEYS FIRST_VERSION [VALUE_BYTES]
//
// Keys are user:0 .. user:KEYS-1, in a scattered order; versions run from
// FIRST_VERSION up (above the replica's positioning floor). Prints how long
// producing took.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "librdkafka/rdkafkacpp.h"
#include "sync/event.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s BOOTSTRAP TOPIC EVENTS KEYS FIRST_VERSION [VALUE_BYTES]\n",
                 argv[0]);
    return 2;
  }
  const std::string bootstrap = argv[1], topic = argv[2];
  const long long events = std::atoll(argv[3]), keys = std::atoll(argv[4]);
  const unsigned long long first = std::strtoull(argv[5], nullptr, 10);
  const size_t value_bytes = argc > 6 ? std::strtoul(argv[6], nullptr, 10) : 100;
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [k, v] : {std::pair<std::string, std::string>{"bootstrap.servers", bootstrap},
                             {"linger.ms", "20"},
                             {"batch.num.messages", "10000"},
                             {"queue.buffering.max.messages", "1000000"},
                             {"compression.type", "lz4"},
                             {"acks", "all"}}) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      std::fprintf(stderr, "%s: %s\n", k.c_str(), err.c_str());
      return 1;
    }
  }
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), err));
  if (!producer) {
    std::fprintf(stderr, "producer: %s\n", err.c_str());
    return 1;
  }
  const std::string value(value_bytes, 'w');
  const auto start = std::chrono::steady_clock::now();
  for (long long i = 0; i < events; ++i) {
    cachecar::sync::Event e;
    e.ns = "default";
    e.key = absl::StrCat("user:", (i * 7919) % keys);
    e.version = first + static_cast<unsigned long long>(i);
    e.value = value;
    e.origin = "fill_topic";
    e.committed = absl::Now();
    const std::string payload = cachecar::sync::EncodeEvent(e);
    const std::string key = cachecar::sync::MessageKey(e.ns, e.key);
    while (true) {
      const RdKafka::ErrorCode rc = producer->produce(
          topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(payload.data()), payload.size(), key.data(), key.size(), 0, nullptr);
      if (rc == RdKafka::ERR_NO_ERROR) break;
      if (rc != RdKafka::ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", RdKafka::err2str(rc).c_str());
        return 1;
      }
      producer->poll(10);
    }
    if (i % 10000 == 0) producer->poll(0);
  }
  if (producer->flush(120 * 1000) != RdKafka::ERR_NO_ERROR) {
    std::fprintf(stderr, "flush: messages left unsent\n");
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("produced %lld events in %.2f s (%.0f/s)\n", events, secs, events / secs);
  return 0;
}
