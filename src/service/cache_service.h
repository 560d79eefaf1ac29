// CacheService: cachecar's read and write paths, with no gRPC in sight.
//
// Read path (Get, BatchGet): a cache hit answers inline, on the caller's
// thread. A miss joins the key's in-flight load if there is one
// (singleflight: N concurrent misses, one store read) or starts one on the
// worker pool. A load takes a fill ticket before it reads the store, so a
// value that something newer overtook meanwhile is never cached (C3).
//
// Write path (Put, Delete): on the worker pool; the store first, then the
// engine at the version the store gave (read-your-writes, C2). A failed write
// leaves the cache alone; a write whose outcome is unknown drops the key.
//
// Every answer is delivered through the `done` callback exactly once, either
// inline (validation errors, hits) or from a worker thread.
//
// Thread-safety: all methods may be called concurrently from any thread.
#ifndef CACHECAR_SERVICE_CACHE_SERVICE_H_
#define CACHECAR_SERVICE_CACHE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "service/namespaces.h"
#include "service/read_result.h"
#include "service/replication.h"
#include "service/single_flight.h"
#include "service/worker_pool.h"
#include "store/store.h"

namespace cachecar::service {

// kCacheOnly: answer from the cache or not at all (a miss, or a replica
// that cannot vouch for max_staleness, answers "not cached", Source::kNone);
// never reads the store.
enum class Consistency { kCached, kStrong, kCacheOnly };

struct WriteOptions {
  store::Precondition precondition;
  std::optional<absl::Duration> ttl;  // cached copy's ttl; unset = namespace's
};

struct DeleteOutcome {
  bool found = false;
  uint64_t version = 0;
};

// One write of a WriteBatch: a put of `value` (with its precondition and
// ttl), or a delete (precondition kNone or kIfVersion, no value, no ttl).
struct BatchWriteOp {
  std::string key;
  bool is_delete = false;
  std::string value;
  WriteOptions options;
};

struct NamespaceStatsView {
  std::string name;
  cache::EngineStats engine;
  uint64_t max_bytes = 0;
  uint64_t loads = 0;
  // Replicated namespaces only (replicated: true).
  bool replicated = false;
  bool complete = false;        // holds the whole table now (absent keys answered)
  uint64_t full_loads = 0;      // whole-table loads finished
  uint64_t absent_answers = 0;  // misses answered "absent" without a store read
};

struct Limits {
  uint32_t max_key_bytes = 1024;
  uint32_t max_value_bytes = 1 << 20;
  uint32_t max_batch_keys = 1000;
  // Largest BatchGet answer (sum of its values); the client could not
  // receive more than its own message limit anyway.
  uint64_t max_response_bytes = 4 << 20;
  // A min-version read whose cached copy is older waits this long (within
  // its deadline) for the event, then reads the store.
  absl::Duration min_version_wait = absl::Seconds(1);
  static Limits FromConfig(const config::Config& config);
};

class WatchHub;
class VersionWaits;

// Optional collaborators; any may be null.
struct ServiceHooks {
  WatchHub* watch = nullptr;           // receives every local change
  Replication* replication = nullptr;  // announces changes; decides bypass
  VersionWaits* waits = nullptr;       // min-version reads wait here for events
};

// What min-version reads did (for metrics).
struct MinVersionStats {
  uint64_t from_cache = 0;    // the cached copy was new enough (at once or after a wait)
  uint64_t read_through = 0;  // read the store: no event in time (or no sync topic)
  uint64_t out_of_range = 0;  // the store is below min_version: OUT_OF_RANGE
};

class CacheService {
 public:
  using ReadDone = std::function<void(absl::StatusOr<ReadResult>)>;
  using BatchDone = std::function<void(absl::StatusOr<std::vector<ReadResult>>)>;
  using PutDone = std::function<void(absl::StatusOr<uint64_t>)>;
  using DeleteDone = std::function<void(absl::StatusOr<DeleteOutcome>)>;
  // One outcome per write, in order: a put's version (found false), or a
  // delete's as Delete answers it.
  using WriteBatchDone = std::function<void(absl::StatusOr<std::vector<DeleteOutcome>>)>;

  // `namespaces`, `store` and `pool` must outlive the service.
  CacheService(Limits limits, NamespaceSet& namespaces, store::Store& store, WorkerPool& pool,
               ServiceHooks hooks = {});

  void Get(absl::string_view ns, const std::string& key, Consistency consistency,
           absl::Time deadline, const ReadDone& done, uint64_t min_version = 0);

  // The hit path without copies: a CACHED Get the cache can answer calls
  // `hit` with the entry while the engine's shard is locked (copy what you
  // need out of it and return: nothing slow, no calls into the service);
  // every other answer (misses, STRONG, bypass, errors) comes through `done`
  // as for Get. Exactly one of the two is called.
  struct CachedValue {
    bool found = false;      // a value (else the key is known absent)
    std::string_view value;  // when found; valid only inside `hit`
    uint64_t version = 0;
  };
  using HitSink = absl::FunctionRef<void(const CachedValue&)>;
  //
  // `min_version` > 0: the answer's version is at least that (a version a
  // write of this key returned, perhaps on another replica). A cached copy
  // that is older waits for the event (up to min_version_wait, within the
  // deadline), then the store is read; a store below it is OUT_OF_RANGE.
  void Get(absl::string_view ns, absl::string_view key, Consistency consistency,
           absl::Time deadline, HitSink hit, const ReadDone& done, uint64_t min_version = 0);
  // `min_versions`: empty, or one per key (0: none), as Get's min_version.
  void BatchGet(absl::string_view ns, std::vector<std::string> keys, Consistency consistency,
                absl::Time deadline, BatchDone done, std::vector<uint64_t> min_versions = {});
  MinVersionStats min_version_stats() const;
  void Put(absl::string_view ns, std::string key, std::string value, WriteOptions options,
           absl::Time deadline, const PutDone& done);
  void Delete(absl::string_view ns, std::string key, std::optional<uint64_t> if_version,
              absl::Time deadline, const DeleteDone& done);

  // Several writes of one namespace, all or nothing, in one store
  // transaction (at most max_batch_keys, distinct keys): on success every
  // key is applied to the cache and announced (one event per key), as Put
  // and Delete do; a failed precondition (ABORTED, naming the write) writes
  // nothing; an unknown outcome drops every key of the batch.
  void WriteBatch(absl::string_view ns, std::vector<BatchWriteOp> writes, absl::Time deadline,
                  const WriteBatchDone& done);

  using InvalidateDone = std::function<void(absl::StatusOr<uint64_t>)>;
  // Drops keys (at most max_batch_keys) from the local cache inline, or with
  // `all` the whole namespace on the worker pool (freeing a large namespace
  // takes a while); answers how many entries were dropped. With `broadcast`
  // (and a sync topic), every other replica drops them too.
  void Invalidate(absl::string_view ns, const std::vector<std::string>& keys, bool all,
                  const InvalidateDone& done, bool broadcast = false);

  // CACHED reads answered from the store because the cache could not show
  // it was within max_staleness (C4).
  uint64_t bypassed_reads() const { return bypassed_reads_.load(std::memory_order_relaxed); }

  // Stats of one namespace, or all when `ns` is empty.
  absl::StatusOr<std::vector<NamespaceStatsView>> Stats(absl::string_view ns) const;

 private:
  absl::Status CheckKey(absl::string_view key) const;
  // At most max_batch_keys keys, each valid; the error names the position.
  absl::Status CheckKeys(const std::vector<std::string>& keys) const;
  // A WriteBatch's writes: 1 to max_batch_keys, distinct valid keys, each
  // put or delete well formed; the error names the write.
  absl::Status CheckWrites(const std::vector<BatchWriteOp>& writes) const;
  // After a committed WriteBatch: applies each write to the cache and
  // announces it, as Put and Delete do; the outcomes in order.
  std::vector<DeleteOutcome> ApplyCommitted(const Namespace& ns,
                                            const std::vector<BatchWriteOp>& writes,
                                            const std::vector<store::BatchWriteResult>& results);

  // Reads `keys` from the store (one round trip per attempt) under fill
  // tickets and offers each value to the engine; a key a newer write
  // overtook is answered from the engine if it holds the newer value, else
  // read again. With `land_flights`, the keys are flights this caller leads:
  // each is landed with its answer (or the error) and the deadline is the
  // flights' latest. Blocks: worker threads only.
  absl::StatusOr<std::vector<ReadResult>> LoadKeys(Namespace& ns,
                                                   const std::vector<std::string>& keys,
                                                   absl::Time deadline, bool land_flights);
  // A STRONG BatchGet: every distinct key read once, answers in key order.
  absl::StatusOr<std::vector<ReadResult>> LoadStrong(Namespace& ns,
                                                     const std::vector<std::string>& keys,
                                                     absl::Time deadline);
  // One store round trip for `keys`; counts a load.
  absl::StatusOr<std::vector<store::Record>> Read(Namespace& ns,
                                                  const std::vector<std::string>& keys,
                                                  absl::Time deadline);
  // The latest deadline among the callers waiting for `keys`.
  absl::Time FlightDeadline(const Namespace& ns, const std::vector<std::string>& keys) const;
  // Offers one loaded record to the engine; nullopt if it was overtaken and
  // the engine holds nothing newer to answer with.
  std::optional<ReadResult> Settle(Namespace& ns, const std::string& key, cache::FillTicket ticket,
                                   const store::Record& record);

  // A replicated namespace whose cache is complete (service/replicated_state.h)
  // answers a miss as "absent" without a store read; counts it. Call only
  // where the cache is trusted.
  bool AbsentForSure(Namespace& ns, std::string_view key);
  // Drops `key` from the cache without a version (a local Invalidate, a
  // write whose outcome is unknown); in a replicated namespace the key is
  // then unknown until reloaded.
  static bool Drop(Namespace& ns, const std::string& key);

  // The cache may answer CACHED reads (no replication, or within the bound);
  // counts a bypassed read when not.
  bool CacheTrusted();
  // After a local change: tells the other replicas (a committed write always;
  // an Invalidate with broadcast) and the watchers (unless a racing newer
  // write already moved the engine past it, so they see one key's versions
  // in order). `value` is an upsert's new value.
  void Changed(const Namespace& ns, Change change, bool tell_replicas, bool tell_watchers,
               absl::string_view value = {});

  // A min-version read the cache could not answer at once: waits for the
  // event (if there is a sync topic), then answers from the cache or the
  // store. Never blocks.
  void AwaitVersion(Namespace& ns, const std::string& key, uint64_t min_version,
                    Consistency consistency, absl::Time deadline, const ReadDone& done);
  // Reads `key` from the store on the pool; OUT_OF_RANGE below min_version.
  void ReadAtLeast(Namespace& ns, const std::string& key, uint64_t min_version, absl::Time deadline,
                   const ReadDone& done);
  // BatchGet with min_versions (service/min_version_batch.h): the waits at
  // once, then one store read for the keys still behind.
  void BatchGetAtLeast(absl::string_view ns, std::vector<std::string> keys, Consistency consistency,
                       absl::Time deadline, BatchDone done, std::vector<uint64_t> min_versions);

  // Starts loads for `keys` (unique, all misses) whose flights this caller
  // leads, on the worker pool; fails the flights if the pool is full.
  void StartLoads(Namespace& ns, const std::vector<std::string>& keys);

  // Get's steps. AnswerFromCache calls `hit` with the cached entry (under the
  // shard lock) if there is one at `min_version` or newer, and says whether
  // it did. GetAtLeast: a read with min_version > 0. LoadOnPool: a STRONG
  // (or bypassed) read of the store on the pool. JoinOrLoad: a CACHED miss
  // joins the key's flight or leads a new one.
  bool AnswerFromCache(Namespace& ns, absl::string_view key, HitSink hit, uint64_t min_version = 0);
  void GetAtLeast(Namespace& ns, absl::string_view key, uint64_t min_version,
                  Consistency consistency, absl::Time deadline, HitSink hit, const ReadDone& done);
  void LoadOnPool(Namespace& ns, absl::string_view key, absl::Time deadline, const ReadDone& done);
  void JoinOrLoad(Namespace& ns, absl::string_view key, absl::Time deadline, const ReadDone& done);

  // BatchGet's steps. CheckBatchGet: the request's keys and min_versions
  // are valid. BatchGetCacheOnly: a CACHE_ONLY batch, answered inline.
  // BatchGetCached: a CACHED batch; hits answer at once, misses join or
  // lead flights and `done` runs when the last lands.
  absl::Status CheckBatchGet(const std::vector<std::string>& keys,
                             const std::vector<uint64_t>& min_versions) const;
  void BatchGetCacheOnly(Namespace& ns, const std::vector<std::string>& keys,
                         const BatchDone& done);
  void BatchGetCached(Namespace& ns, const std::vector<std::string>& keys, absl::Time deadline,
                      BatchDone done);

  const Limits limits_;
  NamespaceSet& namespaces_;
  store::Store& store_;
  WorkerPool& pool_;
  const ServiceHooks hooks_;
  SingleFlight flights_;
  std::atomic<uint64_t> bypassed_reads_{0};
  std::atomic<uint64_t> min_from_cache_{0}, min_read_through_{0}, min_out_of_range_{0};
};

// Cache lookup result → ReadResult (the value moved, not copied: this is
// the hit path), if the engine could answer.
std::optional<ReadResult> FromLookup(cache::Lookup lookup);

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_CACHE_SERVICE_H_
