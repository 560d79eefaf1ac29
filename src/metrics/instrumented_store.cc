// See instrumented_store.h.
#include "metrics/instrumented_store.h"

namespace cachecar::metrics {
namespace {

template <typename T>
absl::StatusCode CodeOf(const absl::StatusOr<T>& r) {
  return r.status().code();
}
absl::StatusCode CodeOf(const absl::Status& s) { return s.code(); }

// Runs `call`, records it under `op`, returns its result.
template <typename Call>
auto Timed(Metrics& metrics, absl::string_view op, Call call) {
  const absl::Time start = absl::Now();
  auto result = call();
  metrics.ObserveStore(op, CodeOf(result), absl::Now() - start);
  return result;
}

}  // namespace

absl::StatusOr<store::Record> InstrumentedStore::Load(absl::string_view ns, absl::string_view key,
                                                      const store::CallOptions& options) {
  return Timed(metrics_, "load", [&] { return inner_.Load(ns, key, options); });
}

absl::StatusOr<std::vector<store::Record>> InstrumentedStore::LoadBatch(
    absl::string_view ns, const std::vector<std::string>& keys, const store::CallOptions& options) {
  return Timed(metrics_, "load_batch", [&] { return inner_.LoadBatch(ns, keys, options); });
}

absl::StatusOr<std::vector<std::string>> InstrumentedStore::ScanKeys(
    absl::string_view ns, absl::string_view after, size_t limit,
    const store::CallOptions& options) {
  return Timed(metrics_, "scan_keys", [&] { return inner_.ScanKeys(ns, after, limit, options); });
}

absl::StatusOr<uint64_t> InstrumentedStore::Put(absl::string_view ns, absl::string_view key,
                                                absl::string_view value,
                                                store::Precondition precondition,
                                                const store::CallOptions& options) {
  return Timed(metrics_, "put", [&] { return inner_.Put(ns, key, value, precondition, options); });
}

absl::StatusOr<store::DeleteResult> InstrumentedStore::Delete(absl::string_view ns,
                                                              absl::string_view key,
                                                              std::optional<uint64_t> if_version,
                                                              const store::CallOptions& options) {
  return Timed(metrics_, "delete", [&] { return inner_.Delete(ns, key, if_version, options); });
}

absl::StatusOr<std::vector<store::BatchWriteResult>> InstrumentedStore::WriteBatch(
    absl::string_view ns, const std::vector<store::BatchWrite>& writes,
    const store::CallOptions& options) {
  return Timed(metrics_, "write_batch", [&] { return inner_.WriteBatch(ns, writes, options); });
}

absl::StatusOr<store::VersionSnapshot> InstrumentedStore::ReadVersions(
    absl::string_view ns, const std::vector<std::string>& keys, const store::CallOptions& options) {
  return Timed(metrics_, "read_versions", [&] { return inner_.ReadVersions(ns, keys, options); });
}

absl::Status InstrumentedStore::CheckHealth(const store::CallOptions& options) {
  absl::Status s = Timed(metrics_, "health_check", [&] { return inner_.CheckHealth(options); });
  metrics_.SetStoreReachable(s.ok());
  return s;
}

}  // namespace cachecar::metrics
