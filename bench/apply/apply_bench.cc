// Apply throughput (issue #15 item 4), in process: how many sync events per
// second one replica applies on its consumer thread, i.e. what the consumer
// loop does per message after librdkafka handed it over: DecodeMessage (the
// SyncEvent protobuf) + SyncReplication::OnEvent (namespace lookup, version
// check, engine Apply, min-version waits). Events are UPSERTs of 100-byte
// values with increasing versions over many keys, the way partitions
// interleave them; the engine holds every key (a warm replica: each event
// replaces a value) or none (update mode adds nothing it never read: each
// event is a version check).
//
//   build/bench/apply/cachecar_apply_bench --benchmark_min_time=2
//
// Thread-safety: single-threaded, as the consumer loop.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "service/namespaces.h"
#include "service/sync_replication.h"
#include "service/version_waits.h"
#include "sync/event.h"
#include "sync/outbox_relay.h"

namespace cachecar {
namespace {

class NullSync final : public sync::Sync {
 public:
  void Start(sync::EventSink&) override {}
  void Stop(absl::Duration) override {}
  void Publish(const sync::Event&, Delivered d) override {
    if (d) d(absl::OkStatus());
  }
  void PublishWatermark(sync::Watermark, Delivered d) override { d(absl::OkStatus()); }
  bool positioned() const override { return true; }
  absl::Time topic_fresh_as_of() const override { return absl::Now(); }
  sync::SyncStats Stats() const override { return {}; }
  absl::string_view replica_id() const override { return "bench"; }
};

// A replica's apply path with `keys` keys of 100-byte values; `warm`: the
// engine holds them all.
struct Replica {
  Replica(int keys, bool warm) : announcer(sync, nullptr) {
    config::Config c;
    c.max_bytes = 1ull << 30;
    c.max_value_bytes = 1024;
    c.namespaces = {{"default", absl::ZeroDuration(), 0}};
    namespaces = std::make_unique<service::NamespaceSet>(c);
    service::SyncReplicationOptions o;
    o.waits = &waits;
    replication =
        std::make_unique<service::SyncReplication>(*namespaces, sync, announcer, nullptr, o);
    const std::string value(100, 'v');
    cache::Engine& engine = *(*namespaces->Find("default"))->engine;
    for (int k = 0; k < keys; ++k) {
      key_names.push_back(absl::StrCat("user:", k));
      if (warm) engine.Apply(key_names.back(), 1, cache::ChangeKind::kValue, value);
    }
  }
  // `n` encoded UPSERTs, keys in a scattered order, versions from `first`.
  std::vector<std::string> Payloads(size_t n, uint64_t first) const {
    std::vector<std::string> out;
    out.reserve(n);
    const std::string value(100, 'w');
    for (size_t i = 0; i < n; ++i) {
      sync::Event e;
      e.ns = "default";
      e.key = key_names[(i * 7919) % key_names.size()];
      e.version = first + i;
      e.op = sync::Op::kUpsert;
      e.value = value;
      e.origin = "writer";
      e.committed = absl::Now();
      out.push_back(sync::EncodeEvent(e));
    }
    return out;
  }

  NullSync sync;
  sync::Announcer announcer;
  service::VersionWaits waits;
  std::unique_ptr<service::NamespaceSet> namespaces;
  std::unique_ptr<service::SyncReplication> replication;
  std::vector<std::string> key_names;
};

// range(0): keys; range(1): 1 = the engine holds them.
void BM_DecodeAndApply(benchmark::State& state) {
  Replica r(static_cast<int>(state.range(0)), state.range(1) == 1);
  constexpr size_t kBatch = 1 << 16;
  uint64_t version = 2;
  std::vector<std::string> payloads = r.Payloads(kBatch, version);
  size_t i = 0;
  for (auto _ : state) {
    if (i == payloads.size()) {  // fresh versions, outside the timing
      state.PauseTiming();
      version += kBatch;
      payloads = r.Payloads(kBatch, version);
      i = 0;
      state.ResumeTiming();
    }
    absl::StatusOr<sync::Message> m = sync::DecodeMessage(payloads[i++]);
    if (!m.ok()) state.SkipWithError("undecodable");
    r.replication->OnEvent(m->event);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAndApply)
    ->ArgNames({"keys", "warm"})
    ->Args({10000, 1})
    ->Args({1000000, 1})
    ->Args({1000000, 0});

// The decode alone, to see where the time goes.
void BM_DecodeOnly(benchmark::State& state) {
  Replica r(1000, false);
  const std::vector<std::string> payloads = r.Payloads(1 << 12, 2);
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<sync::Message> m = sync::DecodeMessage(payloads[i++ & 4095]);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeOnly);

}  // namespace
}  // namespace cachecar

BENCHMARK_MAIN();
