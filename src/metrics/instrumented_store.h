// InstrumentedStore: a Store that forwards every call to another one and
// records its latency and status code in Metrics
// (cachecar_store_operations_total, cachecar_store_duration_seconds).
//
// Thread-safety: as the wrapped store.
#ifndef CACHECAR_METRICS_INSTRUMENTED_STORE_H_
#define CACHECAR_METRICS_INSTRUMENTED_STORE_H_

#include "metrics/metrics.h"
#include "store/store.h"

namespace cachecar::metrics {

class InstrumentedStore final : public store::Store {
 public:
  InstrumentedStore(store::Store& inner, Metrics& metrics) : inner_(inner), metrics_(metrics) {}

  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& options) override;
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& options) override;
  absl::StatusOr<std::vector<std::string>> ScanKeys(absl::string_view ns, absl::string_view after,
                                                    size_t limit,
                                                    const store::CallOptions& options) override;
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               store::Precondition precondition,
                               const store::CallOptions& options) override;
  absl::StatusOr<store::DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                             std::optional<uint64_t> if_version,
                                             const store::CallOptions& options) override;
  absl::StatusOr<std::vector<store::BatchWriteResult>> WriteBatch(
      absl::string_view ns, const std::vector<store::BatchWrite>& writes,
      const store::CallOptions& options) override;
  absl::StatusOr<store::VersionSnapshot> ReadVersions(absl::string_view ns,
                                                      const std::vector<std::string>& keys,
                                                      const store::CallOptions& options) override;
  absl::Status CheckHealth(const store::CallOptions& options) override;
  absl::StatusOr<store::StoreStats> Stats(const store::CallOptions& options) override {
    return inner_.Stats(options);
  }
  absl::string_view Name() const override { return inner_.Name(); }
  store::Outbox* outbox() override { return inner_.outbox(); }
  absl::StatusOr<uint64_t> LatestVersion(const store::CallOptions& options) override {
    return inner_.LatestVersion(options);
  }
  absl::StatusOr<absl::Time> ServerTime(const store::CallOptions& options) override {
    return inner_.ServerTime(options);
  }

 private:
  store::Store& inner_;
  Metrics& metrics_;
};

}  // namespace cachecar::metrics

#endif  // CACHECAR_METRICS_INSTRUMENTED_STORE_H_
