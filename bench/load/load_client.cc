// cachecar_load: the load generator of bench/run.sh for cachecar's gRPC API.
//
// One client thread drives a grpc::CompletionQueue (the async API), so the
// client costs about one core at most and its own overhead per call is a few
// microseconds: ghz, pinned to the same single core, spent more CPU per call
// than the server it measured (docs/BENCHMARKS.md has the numbers).
//
// Modes, each printing one JSON object on stdout:
//   get        closed loop: --inflight Gets of --keys preloaded keys
//   batchget   the same with BatchGets of --batch keys each ("calls" and
//              "rps" count calls; each answers --batch Gets)
//   put        closed loop: --inflight Puts of fresh keys
//   fill       Puts of key:000000000000 .. --keys-1 (preloads a hit-path run)
//   propagate  Puts on --target at --rate per second (open loop); a Watch on
//              --reader sees each one arrive: latency from send to visible
//   propagate-sql  the same with direct SQL INSERTs (--sql-dsn) instead of
//              Puts: a write no cachecar writer announces, which a relay
//              publishes
//   stampede   --requests Gets of one cold key, all started before any
//              returns; reports how many the cache answered and the loads
//              the replica made (its Stats), so the caller can compare the
//              store's query count
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/v1/cache.grpc.pb.h"
#include "libpq-fe.h"

namespace {

using Clock = std::chrono::steady_clock;
using cachecar::v1::Cache;

struct Options {
  std::string mode;
  std::string target = "127.0.0.1:50051";
  std::string reader;  // propagate: the replica that watches
  std::string ns = "default";
  std::string key_prefix = "key:";
  bool strong = false;
  int inflight = 1;
  double seconds = 5;
  double warmup = 1;
  int64_t keys = 1000;
  int64_t requests = 1000;
  int batch = 10;
  size_t value_bytes = 100;
  double rate = 100;
  std::string sql_dsn;  // propagate-sql: libpq DSN of cachecar's database
};

void Usage() {
  std::fprintf(stderr,
               "usage: cachecar_load MODE [flags]\n"
               "  MODE: get | batchget | put | fill | propagate | propagate-sql | stampede\n"
               "  --target=ADDR        cachecar to call (host:port or unix:///path)\n"
               "  --reader=ADDR        propagate: replica whose Watch sees the writes\n"
               "  --namespace=NS       default: default\n"
               "  --key-prefix=P       key names are P + 12-digit number (default key:)\n"
               "  --inflight=N         calls outstanding at once (get, put, fill)\n"
               "  --seconds=S          measured time (get, put, propagate), default 5\n"
               "  --warmup=S           unmeasured time before it (get, put), default 1\n"
               "  --keys=N             keys to read (get) or write (fill), default 1000\n"
               "  --requests=N         stampede: concurrent Gets, default 1000\n"
               "  --batch=N            batchget: keys per call, default 10\n"
               "  --value-bytes=N      value size for put, fill, propagate, default 100\n"
               "  --rate=R             propagate: writes per second, default 100\n"
               "  --sql-dsn=DSN        propagate-sql: libpq DSN of cachecar's database\n"
               "  --strong             get: CONSISTENCY_STRONG (read the store)\n");
}

bool ParseFlag(const char* arg, Options& o) {
  auto value = [arg](const char* name) -> const char* {
    const size_t n = std::strlen(name);
    if (std::strncmp(arg, name, n) == 0 && arg[n] == '=') return arg + n + 1;
    return nullptr;
  };
  if (const char* v = value("--target")) {
    o.target = v;
    return true;
  }
  if (const char* v = value("--reader")) {
    o.reader = v;
    return true;
  }
  if (const char* v = value("--namespace")) {
    o.ns = v;
    return true;
  }
  if (const char* v = value("--key-prefix")) {
    o.key_prefix = v;
    return true;
  }
  if (const char* v = value("--inflight")) {
    o.inflight = std::atoi(v);
    return o.inflight > 0;
  }
  if (const char* v = value("--seconds")) {
    o.seconds = std::atof(v);
    return o.seconds > 0;
  }
  if (const char* v = value("--warmup")) {
    o.warmup = std::atof(v);
    return o.warmup >= 0;
  }
  if (const char* v = value("--keys")) {
    o.keys = std::atoll(v);
    return o.keys > 0;
  }
  if (const char* v = value("--batch")) {
    o.batch = std::atoi(v);
    return o.batch > 0;
  }
  if (const char* v = value("--requests")) {
    o.requests = std::atoll(v);
    return o.requests > 0;
  }
  if (const char* v = value("--value-bytes")) {
    o.value_bytes = std::strtoul(v, nullptr, 10);
    return true;
  }
  if (const char* v = value("--sql-dsn")) {
    o.sql_dsn = v;
    return true;
  }
  if (const char* v = value("--rate")) {
    o.rate = std::atof(v);
    return o.rate > 0;
  }
  if (std::strcmp(arg, "--strong") == 0) {
    o.strong = true;
    return true;
  }
  return false;
}

std::string KeyName(const Options& o, int64_t i) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%012" PRId64, i);
  return o.key_prefix + digits;
}

// Latency samples in microseconds → percentiles.
struct Samples {
  std::vector<double> us;
  double Percentile(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    const size_t i = std::min(us.size() - 1, static_cast<size_t>(p / 100.0 * us.size()));
    return us[i];
  }
};

// gRPC takes deadlines on the system clock only.
std::chrono::system_clock::time_point SystemDeadline(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// One outstanding unary call; the completion queue hands it back as its tag.
class Call {
 public:
  virtual ~Call() = default;
  virtual void Start(Cache::Stub& stub, grpc::CompletionQueue& cq, int64_t seq) = 0;
  // A short description of what went wrong, or "" if the call succeeded.
  virtual std::string Failure() const {
    return status_.ok() ? "" : std::to_string(status_.error_code()) + " " + status_.error_message();
  }
  Clock::time_point started;

 protected:
  void Begin() {
    context_ = std::make_unique<grpc::ClientContext>();
    started = Clock::now();
  }
  std::unique_ptr<grpc::ClientContext> context_;
  grpc::Status status_;
};

class GetCall : public Call {
 public:
  explicit GetCall(const Options& o) : options_(o) {}
  void Start(Cache::Stub& stub, grpc::CompletionQueue& cq, int64_t seq) override {
    Begin();
    request_.set_namespace_(options_.ns);
    // A fixed stride through the keys: every key, in an order no cache
    // line prefetcher follows.
    request_.set_key(KeyName(options_, (seq * 7919) % options_.keys));
    request_.set_consistency(options_.strong ? cachecar::v1::CONSISTENCY_STRONG
                                             : cachecar::v1::CONSISTENCY_CACHED);
    reader_ = stub.PrepareAsyncGet(context_.get(), request_, &cq);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }
  std::string Failure() const override {
    std::string f = Call::Failure();
    if (f.empty() && !response_.found()) f = "key not found: " + request_.key();
    return f;
  }
  const cachecar::v1::GetResponse& response() const { return response_; }

 private:
  const Options& options_;
  cachecar::v1::GetRequest request_;
  cachecar::v1::GetResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<cachecar::v1::GetResponse>> reader_;
};

class BatchGetCall : public Call {
 public:
  explicit BatchGetCall(const Options& o) : options_(o) {}
  void Start(Cache::Stub& stub, grpc::CompletionQueue& cq, int64_t seq) override {
    Begin();
    request_.Clear();
    request_.set_namespace_(options_.ns);
    for (int i = 0; i < options_.batch; ++i) {
      request_.add_keys(KeyName(options_, ((seq * options_.batch + i) * 7919) % options_.keys));
    }
    reader_ = stub.PrepareAsyncBatchGet(context_.get(), request_, &cq);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }
  std::string Failure() const override {
    std::string f = Call::Failure();
    if (!f.empty()) return f;
    for (const auto& e : response_.entries()) {
      if (!e.found()) return "key not found: " + e.key();
    }
    return "";
  }
  int64_t FromStore() const {
    int64_t n = 0;
    for (const auto& e : response_.entries()) n += e.source() == cachecar::v1::SOURCE_STORE;
    return n;
  }

 private:
  const Options& options_;
  cachecar::v1::BatchGetRequest request_;
  cachecar::v1::BatchGetResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<cachecar::v1::BatchGetResponse>> reader_;
};

class PutCall : public Call {
 public:
  PutCall(const Options& o, std::string value) : options_(o), value_(std::move(value)) {}
  void Start(Cache::Stub& stub, grpc::CompletionQueue& cq, int64_t seq) override {
    Begin();
    request_.set_namespace_(options_.ns);
    request_.set_key(KeyName(options_, seq));
    request_.set_value(value_);
    reader_ = stub.PrepareAsyncPut(context_.get(), request_, &cq);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

 private:
  const Options& options_;
  std::string value_;
  cachecar::v1::PutRequest request_;
  cachecar::v1::PutResponse response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<cachecar::v1::PutResponse>> reader_;
};

struct Result {
  int64_t ok = 0;          // measured calls that succeeded
  int64_t calls = 0;       // every call made, warm-up included (for CPU per call)
  int64_t from_store = 0;  // Gets the replica answered from the store
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  Samples latency;

  void Count(const Call& call, bool measured, Clock::time_point now) {
    ++calls;
    const std::string failure = call.Failure();
    if (!failure.empty()) {
      ++errors;
      if (first_error.empty()) first_error = failure;
      return;
    }
    if (!measured) return;
    ++ok;
    latency.us.push_back(Micros(now - call.started));
  }
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

void PrintResult(const Options& o, Result& r, const std::string& extra = "") {
  std::printf("{\"mode\":%s,\"target\":%s,\"inflight\":%d,\"requests\":%" PRId64
              ",\"errors\":%" PRId64
              ",\"seconds\":%.3f,\"rps\":%.1f,\"p50_us\":%.1f,"
              "\"p99_us\":%.1f,\"p999_us\":%.1f,\"calls\":%" PRId64 ",\"from_store\":%" PRId64
              ",\"first_error\":%s%s}\n",
              JsonString(o.mode).c_str(), JsonString(o.target).c_str(), o.inflight, r.ok, r.errors,
              r.seconds, r.seconds > 0 ? r.ok / r.seconds : 0, r.latency.Percentile(50),
              r.latency.Percentile(99), r.latency.Percentile(99.9), r.calls, r.from_store,
              JsonString(r.first_error).c_str(), extra.c_str());
}

std::shared_ptr<grpc::Channel> Connect(const std::string& target) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "cachecar_load: cannot connect to %s within 10s\n", target.c_str());
    std::exit(1);
  }
  return channel;
}

// Keeps `calls` outstanding: each completion is counted and, until the time
// (or the number of calls) runs out, started again. The first `warmup`
// seconds are not measured.
Result ClosedLoop(Cache::Stub& stub, std::vector<std::unique_ptr<Call>>& calls, double warmup,
                  double seconds, int64_t max_calls) {
  grpc::CompletionQueue cq;
  Result result;
  const Clock::time_point begin = Clock::now();
  const auto measure_from =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  int64_t seq = 0;
  size_t outstanding = 0;
  for (auto& call : calls) {
    if (max_calls > 0 && seq >= max_calls) break;
    call->Start(stub, cq, seq++);
    ++outstanding;
  }
  void* tag;
  bool ok;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    Call* call = static_cast<Call*>(tag);
    const Clock::time_point now = Clock::now();
    result.Count(*call, max_calls > 0 || (call->started >= measure_from && now <= end), now);
    if (auto* get = dynamic_cast<GetCall*>(call);
        get != nullptr && get->response().source() == cachecar::v1::SOURCE_STORE) {
      ++result.from_store;
    }
    if (auto* batch = dynamic_cast<BatchGetCall*>(call); batch != nullptr) {
      result.from_store += batch->FromStore();
    }
    const bool more = max_calls > 0 ? seq < max_calls : now < end;
    if (more && result.errors < 1000) {
      call->Start(stub, cq, seq++);
    } else {
      --outstanding;
    }
  }
  result.seconds =
      max_calls > 0 ? std::chrono::duration<double>(Clock::now() - begin).count() : seconds;
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

int RunClosedLoop(const Options& o) {
  auto channel = Connect(o.target);
  auto stub = Cache::NewStub(channel);
  const std::string value(o.value_bytes, 'v');
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < o.inflight; ++i) {
    if (o.mode == "get") {
      calls.push_back(std::make_unique<GetCall>(o));
    } else if (o.mode == "batchget") {
      calls.push_back(std::make_unique<BatchGetCall>(o));
    } else {
      calls.push_back(std::make_unique<PutCall>(o, value));
    }
  }
  Result r;
  if (o.mode == "fill") {
    r = ClosedLoop(*stub, calls, 0, 0, o.keys);
  } else {
    r = ClosedLoop(*stub, calls, o.warmup, o.seconds, 0);
  }
  PrintResult(o, r);
  return r.errors == 0 ? 0 : 1;
}

uint64_t NamespaceLoads(Cache::Stub& stub, const std::string& ns) {
  grpc::ClientContext context;
  cachecar::v1::StatsRequest request;
  request.set_namespace_(ns);
  cachecar::v1::StatsResponse response;
  if (!stub.Stats(&context, request, &response).ok()) return 0;
  uint64_t loads = 0;
  for (const auto& n : response.namespaces()) loads += n.loads();
  return loads;
}

int RunStampede(const Options& o) {
  auto channel = Connect(o.target);
  auto stub = Cache::NewStub(channel);
  const uint64_t loads_before = NamespaceLoads(*stub, o.ns);
  Options one_key = o;
  one_key.keys = 1;  // every call asks for KeyName(0)
  std::vector<std::unique_ptr<GetCall>> calls;
  for (int64_t i = 0; i < o.requests; ++i) calls.push_back(std::make_unique<GetCall>(one_key));
  grpc::CompletionQueue cq;
  const Clock::time_point begin = Clock::now();
  for (auto& call : calls) call->Start(*stub, cq, 0);
  Result r;
  int64_t from_cache = 0;
  void* tag;
  bool ok;
  for (int64_t done = 0; done < o.requests && cq.Next(&tag, &ok); ++done) {
    auto* call = static_cast<GetCall*>(tag);
    r.Count(*call, true, Clock::now());
    if (call->Failure().empty() && call->response().source() == cachecar::v1::SOURCE_CACHE) {
      ++from_cache;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  const uint64_t loads = NamespaceLoads(*stub, o.ns) - loads_before;
  Options shown = o;
  shown.inflight = static_cast<int>(o.requests);
  PrintResult(shown, r,
              ",\"from_cache\":" + std::to_string(from_cache) +
                  ",\"replica_loads\":" + std::to_string(loads));
  return r.errors == 0 ? 0 : 1;
}

// Propagation: the Watch on the reader records when each write becomes
// visible there (keys under a prefix of this run's own, key i = write i;
// write `writes` is the probe that shows the stream is live).
class VisibilityWatch {
 public:
  VisibilityWatch(const Options& o, int64_t writes)
      : writes_(writes), visible_ns_(writes + 1), keyed_(o) {
    for (auto& v : visible_ns_) v.store(0);
    keyed_.key_prefix = o.key_prefix + std::to_string(::getpid()) + "-" +
                        std::to_string(Clock::now().time_since_epoch().count()) + "-";
    reader_ = Cache::NewStub(Connect(o.reader));
    cachecar::v1::WatchRequest request;
    request.set_namespace_(o.ns);
    request.set_key_prefix(keyed_.key_prefix);
    stream_ = reader_->Watch(&context_, request);
    thread_ = std::thread([this] {
      cachecar::v1::WatchEvent event;
      while (stream_->Read(&event)) {
        const int64_t i = std::atoll(event.key().c_str() + keyed_.key_prefix.size());
        if (i < 0 || i > writes_) continue;
        int64_t expected = 0;
        if (visible_ns_[i].compare_exchange_strong(expected,
                                                   Clock::now().time_since_epoch().count())) {
          seen_.fetch_add(1);
        }
      }
    });
  }
  ~VisibilityWatch() {
    context_.TryCancel();
    thread_.join();
  }
  // The options with this run's key prefix.
  const Options& keyed() const { return keyed_; }
  // Writes the probe (with `write(writes)`) until the Watch shows it, 10 s at
  // most; false if it never did or a write failed.
  bool WaitLive(const std::function<bool(int64_t)>& write) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (!write(writes_)) return false;
      for (int i = 0; i < 10 && visible_ns_[writes_].load() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (visible_ns_[writes_].load() != 0) {
        seen_.store(0);
        return true;
      }
    }
    std::fprintf(stderr, "cachecar_load: the reader's Watch never saw a write\n");
    return false;
  }
  // Waits (bounded, 15 s) until `expected` writes were seen, then the
  // visibility latencies of writes sent at `sent_ns`.
  Result Finish(const std::vector<int64_t>& sent_ns, int64_t expected, int64_t* missing) {
    const auto give_up = Clock::now() + std::chrono::seconds(15);
    while (seen_.load() < expected && Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Result visible;
    *missing = 0;
    for (int64_t i = 0; i < writes_; ++i) {
      const int64_t at = visible_ns_[i].load();
      if (at == 0 || sent_ns[i] == 0) {
        ++*missing;
        continue;
      }
      ++visible.ok;
      visible.latency.us.push_back((at - sent_ns[i]) / 1000.0);
    }
    return visible;
  }

 private:
  const int64_t writes_;
  std::vector<std::atomic<int64_t>> visible_ns_;
  std::atomic<int64_t> seen_{0};
  Options keyed_;
  std::unique_ptr<Cache::Stub> reader_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<cachecar::v1::WatchEvent>> stream_;
  std::thread thread_;
};

void PrintPropagation(const Options& o, Result& visible, int64_t writes, int64_t missing,
                      Result& acks) {
  char extra[256];
  std::snprintf(extra, sizeof(extra),
                ",\"rate\":%.0f,\"writes\":%" PRId64 ",\"missing\":%" PRId64
                ",\"put_p50_us\":%.1f,\"put_p99_us\":%.1f",
                o.rate, writes, missing, acks.latency.Percentile(50), acks.latency.Percentile(99));
  PrintResult(o, visible, extra);
}

// Puts on --target at --rate per second, sent on a fixed schedule whatever
// the replies do.
int RunPropagate(const Options& o) {
  if (o.reader.empty()) {
    std::fprintf(stderr, "cachecar_load propagate: --reader is required\n");
    return 2;
  }
  auto writer = Cache::NewStub(Connect(o.target));
  const int64_t writes = static_cast<int64_t>(o.rate * o.seconds);
  VisibilityWatch watch(o, writes);
  const Options& keyed = watch.keyed();
  const std::string value(o.value_bytes, 'v');
  auto put_sync = [&](int64_t i) {
    grpc::ClientContext context;
    cachecar::v1::PutRequest request;
    request.set_namespace_(o.ns);
    request.set_key(KeyName(keyed, i));
    request.set_value(value);
    cachecar::v1::PutResponse response;
    grpc::Status s = writer->Put(&context, request, &response);
    if (!s.ok()) {
      std::fprintf(stderr, "cachecar_load propagate: probe Put failed: %s\n",
                   s.error_message().c_str());
    }
    return s.ok();
  };
  if (!watch.WaitLive(put_sync)) return 1;

  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<PutCall>> calls;
  std::vector<PutCall*> idle;
  std::vector<int64_t> sent_ns(writes, 0);
  Result acks;
  const Clock::time_point begin = Clock::now();
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / o.rate));
  int64_t next = 0;
  int64_t outstanding = 0;
  while (next < writes || outstanding > 0) {
    const Clock::time_point due = begin + interval * next;
    void* tag;
    bool ok;
    const auto status = next < writes ? cq.AsyncNext(&tag, &ok, SystemDeadline(due))
                                      : (cq.Next(&tag, &ok) ? grpc::CompletionQueue::GOT_EVENT
                                                            : grpc::CompletionQueue::SHUTDOWN);
    if (status == grpc::CompletionQueue::GOT_EVENT) {
      auto* call = static_cast<PutCall*>(tag);
      acks.Count(*call, true, Clock::now());
      idle.push_back(call);
      --outstanding;
    }
    while (next < writes && Clock::now() >= begin + interval * next) {
      if (idle.empty()) {
        calls.push_back(std::make_unique<PutCall>(keyed, value));
        idle.push_back(calls.back().get());
      }
      PutCall* call = idle.back();
      idle.pop_back();
      call->Start(*writer, cq, next);
      sent_ns[next] = call->started.time_since_epoch().count();
      ++next;
      ++outstanding;
    }
  }
  const double send_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  int64_t missing = 0;
  Result visible = watch.Finish(sent_ns, acks.ok, &missing);
  cq.Shutdown();
  visible.seconds = send_seconds;
  visible.errors = acks.errors;
  visible.first_error = acks.first_error;
  PrintPropagation(o, visible, writes, missing, acks);
  // Writes the reader never showed are reported ("missing"), not fatal.
  return acks.errors == 0 ? 0 : 1;
}

// The same, but each write is a direct SQL INSERT into cachecar's table
// (--sql-dsn, libpq), as psql or another service would make it: what the
// relays must publish without waiting. Sent on a fixed schedule from one
// connection (an INSERT takes far less than the interval at these rates).
int RunPropagateSql(const Options& o) {
  if (o.reader.empty() || o.sql_dsn.empty()) {
    std::fprintf(stderr, "cachecar_load propagate-sql: --reader and --sql-dsn are required\n");
    return 2;
  }
  PGconn* pg = PQconnectdb(o.sql_dsn.c_str());
  if (PQstatus(pg) != CONNECTION_OK) {
    std::fprintf(stderr, "cachecar_load propagate-sql: %s", PQerrorMessage(pg));
    PQfinish(pg);
    return 1;
  }
  const int64_t writes = static_cast<int64_t>(o.rate * o.seconds);
  VisibilityWatch watch(o, writes);
  const Options& keyed = watch.keyed();
  const std::string value(o.value_bytes, 'v');
  Result acks;
  auto insert = [&](int64_t i) {
    const std::string key = KeyName(keyed, i);
    const char* params[] = {o.ns.c_str(), key.c_str(), value.c_str()};
    PGresult* r = PQexecParams(pg,
                               "INSERT INTO cachecar_entries (namespace, key, value) "
                               "VALUES ($1, $2, convert_to($3, 'UTF8'))",
                               3, nullptr, params, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && acks.first_error.empty()) acks.first_error = PQerrorMessage(pg);
    PQclear(r);
    return ok;
  };
  if (!watch.WaitLive(insert)) {
    std::fprintf(stderr, "cachecar_load propagate-sql: %s\n", acks.first_error.c_str());
    PQfinish(pg);
    return 1;
  }
  std::vector<int64_t> sent_ns(writes, 0);
  const Clock::time_point begin = Clock::now();
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / o.rate));
  for (int64_t i = 0; i < writes; ++i) {
    std::this_thread::sleep_until(begin + interval * i);
    const Clock::time_point sent = Clock::now();
    sent_ns[i] = sent.time_since_epoch().count();
    if (insert(i)) {
      ++acks.ok;
      acks.latency.us.push_back(Micros(Clock::now() - sent));
    } else {
      ++acks.errors;
    }
  }
  const double send_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  PQfinish(pg);
  int64_t missing = 0;
  Result visible = watch.Finish(sent_ns, acks.ok, &missing);
  visible.seconds = send_seconds;
  visible.errors = acks.errors;
  visible.first_error = acks.first_error;
  PrintPropagation(o, visible, writes, missing, acks);
  return acks.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    Usage();
    return argc < 2 ? 2 : 0;
  }
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    if (!ParseFlag(argv[i], o)) {
      std::fprintf(stderr, "cachecar_load: bad flag %s\n", argv[i]);
      Usage();
      return 2;
    }
  }
  if (o.mode == "put") {
    // Fresh keys: each run inserts rows of its own rather than updating.
    o.key_prefix += "put-" + std::to_string(::getpid()) + "-";
  }
  if (o.mode == "get" || o.mode == "batchget" || o.mode == "put" || o.mode == "fill") {
    return RunClosedLoop(o);
  }
  if (o.mode == "stampede") return RunStampede(o);
  if (o.mode == "propagate") return RunPropagate(o);
  if (o.mode == "propagate-sql") return RunPropagateSql(o);
  std::fprintf(stderr, "cachecar_load: unknown mode %s\n", o.mode.c_str());
  Usage();
  return 2;
}
