// cachecar's C++ client: Get, BatchGet, Put, Delete, Invalidate, Stats and
// Watch over gRPC, with a deadline per call and retries with backoff on
// UNAVAILABLE that never repeat a write whose outcome is unknown unless the
// caller asks (and then the answer says so). With Options::local_read_path,
// Get answers cache hits from the sidecar's published cache in shared
// memory (docs/LOCAL_READS.md) and falls back to gRPC for everything else.
// See clients/cpp/README.md.
//
//   cachecar::client::Options options;
//   options.target = "127.0.0.1:50051";
//   cachecar::client::Client cache(options);
//   auto put = cache.Put("users", "user:1", "alice");
//   auto got = cache.Get("users", "user:1");
//   if (got.ok() && got->found) use(got->value, got->version);
//
// Thread-safety: a Client is safe to use from many threads at once (it
// shares one gRPC channel). A WatchStream is used by one thread at a time,
// except Cancel(), which any thread may call.
#ifndef CACHECAR_CLIENT_CLIENT_H_
#define CACHECAR_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cachecar/client/status.h"

namespace grpc {
class Channel;
}

namespace cachecar::client {

// How UNAVAILABLE is retried: attempt n (n >= 2) waits
// min(max_backoff, initial_backoff * multiplier^(n-2)), +/- jitter, never past
// the call's deadline. The defaults ride out ~4.5 s of a sidecar restarting.
struct RetryPolicy {
  int max_attempts = 10;  // 1 turns retries off
  std::chrono::milliseconds initial_backoff{25};
  std::chrono::milliseconds max_backoff{1000};
  double multiplier = 2.0;
  double jitter = 0.2;  // fraction of each wait, drawn uniformly
};

struct Options {
  // host:port, or unix:///abs/path. Ignored when `channel` is set.
  std::string target = "127.0.0.1:50051";
  // Use this channel instead of making one (TLS, interceptors, tests).
  std::shared_ptr<grpc::Channel> channel;
  // Deadline of a call that names none.
  std::chrono::milliseconds default_timeout{5000};
  RetryPolicy retry;
  // Largest answer accepted; cachecar caps its own at max_message_bytes
  // (4 MiB by default), so the default never cuts one off.
  int max_receive_message_bytes = 64 << 20;
  // The sidecar's published cache (its local_read_path, mounted read-only
  // in this container; in deploy/k8s $CACHECAR_LOCAL_READ_PATH). Set: Get
  // answers hits from the mapping without a gRPC call, exactly as a gRPC Get
  // on that replica would, and sends everything else (miss, expired,
  // STRONG, bypass, a restarting sidecar, a damaged file) over gRPC;
  // Value::local says which. Empty: gRPC only.
  std::string local_read_path;
  // Report hits served locally to the sidecar's eviction (docs/LOCAL_READS.md
  // "Hit reports"), so keys read only locally are not evicted as unused.
  bool local_report_hits = true;
};

enum class Consistency { kCached, kStrong };
// kLocal: answered from the published cache (Options::local_read_path)
// without a gRPC call; not a cache.proto value.
enum class Source { kUnspecified, kCache, kStore, kLocal = 100 };
const char* SourceName(Source source);  // "SOURCE_CACHE", as in cache.proto; "SOURCE_LOCAL"

// What the local reader said (the numbers of docs/LOCAL_READS.md's result
// codes). kHit and kAbsent are answers (Source::kLocal); every other value
// is why the Get went to gRPC instead.
enum class LocalResult : int {
  kNotTried = -1,  // no local_read_path
  kHit = 0,
  kAbsent = 1,  // the key does not exist, at Value::version
  kMiss = 2,
  kExpired = 3,
  kStale = 4,       // the replica cannot vouch for its cache now (bypass)
  kNotServing = 5,  // no file yet, or starting, retired (restart) or replaced
  kIncompatible = 6,
  kCorrupt = 7,
  kBusy = 8,
  kStrong = 9,
  kUnknownNamespace = 10,
  kBadKey = 11,
};
const char* LocalResultName(LocalResult r);  // "HIT", "MISS", ... ("NOT_TRIED")

// Per-call settings. A zero timeout means Options::default_timeout.
struct CallOptions {
  std::chrono::microseconds timeout{0};
};

struct ReadOptions : CallOptions {
  Consistency consistency = Consistency::kCached;
};

struct PutOptions : CallOptions {
  std::optional<uint64_t> if_version;  // compare-and-set
  bool if_absent = false;              // create only
  uint64_t ttl_ms = 0;                 // 0: the namespace's ttl
  // The caller declares the write idempotent: retry it even when its outcome
  // is unknown. PutResult::retried_outcome_unknown then says it happened.
  bool retry_outcome_unknown = false;
};

struct DeleteOptions : CallOptions {
  std::optional<uint64_t> if_version;
  bool retry_outcome_unknown = false;
};

struct InvalidateOptions : CallOptions {
  bool all = false;        // drop the whole namespace (keys ignored)
  bool broadcast = false;  // ask every other replica too
};

struct Value {
  bool found = false;
  std::string value;
  uint64_t version = 0;  // of the value, or of the delete when !found
  Source source = Source::kUnspecified;
  int attempts = 1;  // gRPC attempts; 0 when answered locally
  LocalResult local = LocalResult::kNotTried;
};

struct BatchEntry {
  std::string key;
  bool found = false;
  std::string value;
  uint64_t version = 0;
  Source source = Source::kUnspecified;
};

struct BatchValues {
  std::vector<BatchEntry> entries;  // one per requested key, in order
  int attempts = 1;
};

struct PutResult {
  uint64_t version = 0;
  int attempts = 1;
  // An earlier attempt's outcome was unknown and the write was sent again
  // (only with retry_outcome_unknown): it may have been applied twice.
  bool retried_outcome_unknown = false;
};

struct DeleteResult {
  bool found = false;
  uint64_t version = 0;
  int attempts = 1;
  bool retried_outcome_unknown = false;
};

struct InvalidateResult {
  uint64_t dropped = 0;
  int attempts = 1;
};

struct NamespaceStats {
  std::string name;
  uint64_t entries = 0, bytes = 0, max_bytes = 0, hits = 0, misses = 0, evictions = 0, loads = 0,
           expirations = 0, fills_rejected = 0;
};

enum class WatchOp { kUnspecified, kUpsert, kDelete, kInvalidate, kFlush };
const char* WatchOpName(WatchOp op);  // "WATCH_OP_UPSERT", as in cache.proto

struct WatchEvent {
  std::string key;  // empty for kFlush
  uint64_t version = 0;
  WatchOp op = WatchOp::kUnspecified;
  bool local = false;
};

// An open Watch stream. Next() blocks for the next event; false once the
// stream ended, and then status() says why (RESOURCE_EXHAUSTED: fell behind;
// UNAVAILABLE: the sidecar shut down; CANCELLED after Cancel()).
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  virtual bool Next(WatchEvent* event) = 0;
  virtual Status status() const = 0;
  // Ends the stream from any thread; a blocked Next() returns false.
  virtual void Cancel() = 0;
};

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // An empty namespace means "default".
  Result<Value> Get(const std::string& ns, const std::string& key, const ReadOptions& options = {});
  Result<BatchValues> BatchGet(const std::string& ns, const std::vector<std::string>& keys,
                               const ReadOptions& options = {});
  Result<PutResult> Put(const std::string& ns, const std::string& key, const std::string& value,
                        const PutOptions& options = {});
  Result<DeleteResult> Delete(const std::string& ns, const std::string& key,
                              const DeleteOptions& options = {});
  Result<InvalidateResult> Invalidate(const std::string& ns, const std::vector<std::string>& keys,
                                      const InvalidateOptions& options = {});
  Result<std::vector<NamespaceStats>> Stats(const std::string& ns = "",
                                            const CallOptions& options = {});

  // Opens a Watch of `ns` (keys starting with `key_prefix`) and returns once
  // the stream is open: every change from then on reaches it. Opening is
  // retried on UNAVAILABLE like a read; the stream itself is not (after it
  // ends, call Watch again and re-read the keys you care about). `options`'
  // timeout bounds the opening only; the stream runs until cancelled.
  Result<std::unique_ptr<WatchStream>> Watch(const std::string& ns, const std::string& key_prefix,
                                             const CallOptions& options = {});

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachecar::client

#endif  // CACHECAR_CLIENT_CLIENT_H_
