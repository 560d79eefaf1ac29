// See client.h. Every unary call goes through Impl::Run: one deadline for all
// attempts, Classify (retry.h) after each failure, backoff in between.
#include "cachecar/client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "cachecar/v1/cache.grpc.pb.h"
#include "localread/reader.h"
#include "retry.h"

namespace cachecar::client {
namespace {

namespace v1 = ::cachecar::v1;
using Clock = std::chrono::system_clock;
using internal::CallKind;

Source FromProto(v1::Source s) {
  switch (s) {
    case v1::SOURCE_CACHE:
      return Source::kCache;
    case v1::SOURCE_STORE:
      return Source::kStore;
    default:
      return Source::kUnspecified;
  }
}

WatchOp FromProto(v1::WatchOp op) {
  switch (op) {
    case v1::WATCH_OP_UPSERT:
      return WatchOp::kUpsert;
    case v1::WATCH_OP_DELETE:
      return WatchOp::kDelete;
    case v1::WATCH_OP_INVALIDATE:
      return WatchOp::kInvalidate;
    case v1::WATCH_OP_FLUSH:
      return WatchOp::kFlush;
    default:
      return WatchOp::kUnspecified;
  }
}

v1::Consistency ToProto(Consistency c) {
  return c == Consistency::kStrong ? v1::CONSISTENCY_STRONG : v1::CONSISTENCY_CACHED;
}

// A Watch call on gRPC's callback API: it tells whether the stream opened
// (headers came) or ended first (an error, trailers only), which the sync API
// cannot. One read in flight at a time: Next() asks for the next event, so an
// app that reads slowly is held back by gRPC's flow control and, past
// cachecar's buffer, ends with RESOURCE_EXHAUSTED (nothing is queued here).
class GrpcWatchStream final : public WatchStream, public grpc::ClientReadReactor<v1::WatchEvent> {
 public:
  // Starts the call; then OpenedBy() says how it went.
  GrpcWatchStream(v1::Cache::Stub& stub, const v1::WatchRequest& request) {
    stub.async()->Watch(&context_, &request, this);
    StartRead(&event_);
    reading_ = true;
    StartCall();
  }

  ~GrpcWatchStream() override {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

  // Waits until the stream opened (true) or ended (false), cancelling it at
  // `deadline`.
  bool OpenedBy(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [this] { return opened_ || done_; })) {
      lock.unlock();
      context_.TryCancel();
      lock.lock();
      cv_.wait(lock, [this] { return opened_ || done_; });
    }
    return opened_;
  }

  bool Next(WatchEvent* event) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!reading_ && !have_event_ && !done_) {
      reading_ = true;
      lock.unlock();
      StartRead(&event_);
      lock.lock();
    }
    cv_.wait(lock, [this] { return have_event_ || done_; });
    if (!have_event_) return false;
    have_event_ = false;
    event->key = event_.key();
    event->version = event_.version();
    event->op = FromProto(event_.op());
    event->local = event_.local();
    return true;
  }

  Status status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  void Cancel() override { context_.TryCancel(); }

  // Waits for the end of a call that did not open, and returns its status.
  Status Ended() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return status_;
  }

  void OnReadInitialMetadataDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    opened_ = ok;
    cv_.notify_all();
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (ok) have_event_ = true;
    cv_.notify_all();
  }

  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = Status(s.error_code(), s.error_message());
    done_ = true;
    cv_.notify_all();
  }

 private:
  grpc::ClientContext context_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  v1::WatchEvent event_;     // written by gRPC while reading_
  bool reading_ = false;     // guarded by mu_
  bool have_event_ = false;  // guarded by mu_
  bool opened_ = false;      // guarded by mu_
  bool done_ = false;        // guarded by mu_
  Status status_;            // guarded by mu_
};

}  // namespace

const char* SourceName(Source source) {
  switch (source) {
    case Source::kCache:
      return "SOURCE_CACHE";
    case Source::kStore:
      return "SOURCE_STORE";
    case Source::kLocal:
      return "SOURCE_LOCAL";
    default:
      return "SOURCE_UNSPECIFIED";
  }
}

const char* LocalResultName(LocalResult r) {
  if (r == LocalResult::kNotTried) return "NOT_TRIED";
  return localread::ResultName(static_cast<localread::Result>(static_cast<int>(r)));
}

const char* WatchOpName(WatchOp op) {
  switch (op) {
    case WatchOp::kUpsert:
      return "WATCH_OP_UPSERT";
    case WatchOp::kDelete:
      return "WATCH_OP_DELETE";
    case WatchOp::kInvalidate:
      return "WATCH_OP_INVALIDATE";
    case WatchOp::kFlush:
      return "WATCH_OP_FLUSH";
    default:
      return "WATCH_OP_UNSPECIFIED";
  }
}

class Client::Impl {
 public:
  explicit Impl(Options options) : options_(std::move(options)), rng_(std::random_device{}()) {
    channel_ = options_.channel;
    if (channel_ == nullptr) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
      // A sidecar on localhost: reconnect quickly after it restarts instead
      // of after gRPC's default 1 s (then up to 120 s) backoff.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      channel_ =
          grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
    }
    stub_ = v1::Cache::NewStub(channel_);
    if (!options_.local_read_path.empty()) {
      localread::ReaderOptions lo;
      lo.path = options_.local_read_path;
      lo.report_hits = options_.local_report_hits;
      local_ = std::make_unique<localread::Reader>(std::move(lo));
    }
  }

  Clock::time_point Deadline(const CallOptions& call) const {
    auto timeout =
        call.timeout.count() > 0
            ? call.timeout
            : std::chrono::duration_cast<std::chrono::microseconds>(options_.default_timeout);
    return Clock::now() + timeout;
  }

  // Sends `attempt` (a function of a fresh ClientContext returning the gRPC
  // status) until it succeeds, fails for good, or the deadline passes.
  // Fills *attempts and *retried_unknown.
  template <typename Attempt>
  Status Run(CallKind kind, const CallOptions& call, bool retry_outcome_unknown, Attempt attempt,
             int* attempts, bool* retried_unknown = nullptr) {
    const Clock::time_point deadline = Deadline(call);
    bool unknown_before = false;
    Status previous;  // the failure that made us retry
    for (int n = 1;; ++n) {
      grpc::ClientContext context;
      context.set_deadline(deadline);
      const bool in_time = Clock::now() < deadline;
      const bool ready_before = channel_->GetState(false) == GRPC_CHANNEL_READY;
      grpc::Status s = attempt(context);
      *attempts = n;
      if (s.ok()) {
        if (retried_unknown != nullptr) *retried_unknown = unknown_before;
        return Status();
      }
      // A call can only have been sent over a connection that was up at
      // some point: not before it and not after it means never sent (the
      // deadline passed while the channel was still connecting).
      const bool sent =
          in_time && (ready_before || channel_->GetState(false) == GRPC_CHANNEL_READY);
      if (!sent && s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && !previous.ok()) {
        previous.set_attempts(n);
        return previous;  // the budget ran out retrying: say why it was retried
      }
      internal::Verdict v =
          internal::Classify(kind, s.error_code(), s.error_message(), sent, retry_outcome_unknown);
      unknown_before = unknown_before || v.outcome_unknown;
      Status failed(s.error_code(), s.error_message(), kind == CallKind::kWrite && unknown_before);
      failed.set_attempts(n);
      previous = failed;
      if (!v.retry || n >= options_.retry.max_attempts) return failed;
      auto wait = internal::Backoff(options_.retry, n + 1, Uniform());
      if (Clock::now() + wait >= deadline) return failed;
      std::this_thread::sleep_for(wait);
    }
  }

  double Uniform() {
    std::lock_guard<std::mutex> lock(rng_mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  }

  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Cache::Stub> stub_;
  std::unique_ptr<localread::Reader> local_;  // null without local_read_path
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_
};

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = std::string(CodeName(code_)) + ": " + message_;
  if (attempts_ > 1 || outcome_unknown_) {
    out += " (";
    if (attempts_ > 1) out += "after " + std::to_string(attempts_) + " attempts";
    if (attempts_ > 1 && outcome_unknown_) out += "; ";
    if (outcome_unknown_) out += "write outcome unknown";
    out += ")";
  }
  return out;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

Result<Value> Client::Get(const std::string& ns, const std::string& key,
                          const ReadOptions& options) {
  Value out;
  if (impl_->local_ != nullptr) {
    const localread::Result r = impl_->local_->Get(ns, key, &out.value, &out.version,
                                                   options.consistency == Consistency::kStrong);
    out.local = static_cast<LocalResult>(static_cast<int>(r));
    if (!localread::IsFallback(r)) {
      out.found = r == localread::Result::kHit;
      out.source = Source::kLocal;
      out.attempts = 0;
      return out;
    }
    out.value.clear();
    out.version = 0;
  }
  v1::GetRequest req;
  req.set_namespace_(ns);
  req.set_key(key);
  req.set_consistency(ToProto(options.consistency));
  v1::GetResponse resp;
  Status s = impl_->Run(
      CallKind::kRead, options, false,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->Get(&ctx, req, &resp); }, &out.attempts);
  if (!s.ok()) return s;
  out.found = resp.found();
  out.value = std::move(*resp.mutable_value());
  out.version = resp.version();
  out.source = FromProto(resp.source());
  return out;
}

// With local reads, the keys the mapping answers are served from it
// (source kLocal) and only the rest go in one gRPC BatchGet; the entries
// stay in request order. A batch the mapping answers whole makes no call
// (attempts 0). A key the mapping calls bad (or an unknown namespace) sends
// the whole batch to gRPC, whose error then names it as it always did.
Result<BatchValues> Client::BatchGet(const std::string& ns, const std::vector<std::string>& keys,
                                     const ReadOptions& options) {
  BatchValues out;
  std::vector<size_t> rest;  // positions of the keys for gRPC
  bool local =
      impl_->local_ != nullptr && !keys.empty() && options.consistency != Consistency::kStrong;
  if (local) {
    out.entries.resize(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      BatchEntry& e = out.entries[i];
      const localread::Result r = impl_->local_->Get(ns, keys[i], &e.value, &e.version);
      if (r == localread::Result::kBadKey || r == localread::Result::kUnknownNamespace) {
        local = false;  // an error: gRPC's answer names the key as in the whole batch
        break;
      }
      if (localread::IsFallback(r)) {
        rest.push_back(i);
        continue;
      }
      e.key = keys[i];
      e.found = r == localread::Result::kHit;
      if (!e.found) e.value.clear();
      e.source = Source::kLocal;
    }
    if (local && rest.empty()) {
      out.attempts = 0;
      return out;
    }
  }
  v1::BatchGetRequest req;
  req.set_namespace_(ns);
  if (local) {
    for (size_t i : rest) req.add_keys(keys[i]);
  } else {
    for (const std::string& k : keys) req.add_keys(k);
  }
  req.set_consistency(ToProto(options.consistency));
  v1::BatchGetResponse resp;
  Status s = impl_->Run(
      CallKind::kRead, options, false,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->BatchGet(&ctx, req, &resp); },
      &out.attempts);
  if (!s.ok()) return s;
  if (!local) out.entries.assign(resp.entries_size(), BatchEntry{});
  const size_t n = local ? rest.size() : out.entries.size();
  if (static_cast<size_t>(resp.entries_size()) != n) {
    return Status(grpc::StatusCode::INTERNAL, "BatchGet answered " +
                                                  std::to_string(resp.entries_size()) +
                                                  " entries for " + std::to_string(n) + " keys");
  }
  for (size_t j = 0; j < n; ++j) {
    v1::BatchGetEntry& e = *resp.mutable_entries(static_cast<int>(j));
    out.entries[local ? rest[j] : j] =
        BatchEntry{std::move(*e.mutable_key()), e.found(), std::move(*e.mutable_value()),
                   e.version(), FromProto(e.source())};
  }
  return out;
}

Result<PutResult> Client::Put(const std::string& ns, const std::string& key,
                              const std::string& value, const PutOptions& options) {
  v1::PutRequest req;
  req.set_namespace_(ns);
  req.set_key(key);
  req.set_value(value);
  if (options.if_version) req.set_if_version(*options.if_version);
  if (options.if_absent) req.set_if_absent(true);
  req.set_ttl_ms(options.ttl_ms);
  v1::PutResponse resp;
  PutResult out;
  Status s = impl_->Run(
      CallKind::kWrite, options, options.retry_outcome_unknown,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->Put(&ctx, req, &resp); }, &out.attempts,
      &out.retried_outcome_unknown);
  if (!s.ok()) return s;
  out.version = resp.version();
  return out;
}

Result<DeleteResult> Client::Delete(const std::string& ns, const std::string& key,
                                    const DeleteOptions& options) {
  v1::DeleteRequest req;
  req.set_namespace_(ns);
  req.set_key(key);
  if (options.if_version) req.set_if_version(*options.if_version);
  v1::DeleteResponse resp;
  DeleteResult out;
  Status s = impl_->Run(
      CallKind::kWrite, options, options.retry_outcome_unknown,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->Delete(&ctx, req, &resp); },
      &out.attempts, &out.retried_outcome_unknown);
  if (!s.ok()) return s;
  out.found = resp.found();
  out.version = resp.version();
  return out;
}

Result<InvalidateResult> Client::Invalidate(const std::string& ns,
                                            const std::vector<std::string>& keys,
                                            const InvalidateOptions& options) {
  v1::InvalidateRequest req;
  req.set_namespace_(ns);
  for (const std::string& k : keys) req.add_keys(k);
  req.set_all(options.all);
  req.set_broadcast(options.broadcast);
  v1::InvalidateResponse resp;
  InvalidateResult out;
  // Dropping cached copies is idempotent: retried like a read.
  Status s = impl_->Run(
      CallKind::kRead, options, false,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->Invalidate(&ctx, req, &resp); },
      &out.attempts);
  if (!s.ok()) return s;
  out.dropped = resp.dropped();
  return out;
}

Result<std::vector<NamespaceStats>> Client::Stats(const std::string& ns,
                                                  const CallOptions& options) {
  v1::StatsRequest req;
  req.set_namespace_(ns);
  v1::StatsResponse resp;
  int attempts = 0;
  Status s = impl_->Run(
      CallKind::kRead, options, false,
      [&](grpc::ClientContext& ctx) { return impl_->stub_->Stats(&ctx, req, &resp); }, &attempts);
  if (!s.ok()) return s;
  std::vector<NamespaceStats> out;
  for (const v1::NamespaceStats& n : resp.namespaces()) {
    out.push_back(NamespaceStats{n.namespace_(), n.entries(), n.bytes(), n.max_bytes(), n.hits(),
                                 n.misses(), n.evictions(), n.loads(), n.expirations(),
                                 n.fills_rejected()});
  }
  return out;
}

Result<std::unique_ptr<WatchStream>> Client::Watch(const std::string& ns,
                                                   const std::string& key_prefix,
                                                   const CallOptions& options) {
  v1::WatchRequest req;
  req.set_namespace_(ns);
  req.set_key_prefix(key_prefix);
  const Clock::time_point deadline = impl_->Deadline(options);
  for (int n = 1;; ++n) {
    // cachecar sends the stream's headers once the watcher is registered:
    // waiting for them is what makes "open" mean "sees every later change".
    auto stream = std::make_unique<GrpcWatchStream>(*impl_->stub_, req);
    if (stream->OpenedBy(deadline)) return std::unique_ptr<WatchStream>(std::move(stream));
    Status failed = stream->Ended();
    if (failed.code() == grpc::StatusCode::CANCELLED && Clock::now() >= deadline) {
      failed = Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before Watch opened");
    }
    failed.set_attempts(n);
    if (failed.code() != grpc::StatusCode::UNAVAILABLE || n >= impl_->options_.retry.max_attempts) {
      return failed;
    }
    auto wait = internal::Backoff(impl_->options_.retry, n + 1, impl_->Uniform());
    if (Clock::now() + wait >= deadline) return failed;
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace cachecar::client
