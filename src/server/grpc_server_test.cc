// GrpcServer over real gRPC on loopback: the Cache API end to end through a
// generated stub, status codes, health, Watch streams, and refusing a second
// server on the same port.
#include "server/grpc_server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <thread>
#include <tuple>

#include "common/mutex.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "store/testing/forwarding_store.h"

namespace cachecar::server {
namespace {

using ::testing::HasSubstr;

// The real MemoryStore behind a gate: while closed, loads wait, so a test can
// hold a call in flight for as long as it needs to.
class GatedStore final : public store::testing::ForwardingStore {
 public:
  void Close() {
    MutexLock lock(&mu_);
    open_ = false;
  }
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }
  // Returns once `n` loads are waiting at the gate.
  void AwaitWaiting(int n) {
    MutexLock lock(&mu_);
    while (waiting_ < n) cv_.Wait(&mu_);
  }

  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& o) override {
    {
      MutexLock lock(&mu_);
      ++waiting_;
      cv_.SignalAll();
      while (!open_) cv_.Wait(&mu_);
      --waiting_;
    }
    return ForwardingStore::Load(ns, key, o);
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
};

class GrpcServerTest : public ::testing::Test {
 protected:
  // Fixtures that need other namespaces set config_ here.
  virtual void Configure() { config_.namespaces = {{"default", absl::ZeroDuration(), 0}}; }
  void SetUp() override {
    Configure();
    config_.max_bytes = 1 << 20;  // small, so a test can fill it past the bound
    namespaces_ = std::make_unique<service::NamespaceSet>(config_, &clock_);
    service::WatchHubOptions watch_options;
    watch_options.max_queued_per_watcher = kMaxQueued;
    hub_ = std::make_unique<service::WatchHub>(*namespaces_, watch_options);
    service_ = std::make_unique<service::CacheService>(service::Limits::FromConfig(config_),
                                                       *namespaces_, store_, pool_);
    ServerOptions options;
    options.listen = {"127.0.0.1:0"};
    options.max_message_bytes = 4 << 20;
    options.probe_listen = {"127.0.0.1:0"};
    options.metrics = &metrics_;
    options.watch_hub = hub_.get();
    auto server = GrpcServer::Start(options, *service_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    address_ = server_->bound_addresses()[0];
    probe_address_ = server_->bound_probe_addresses()[0];
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::Cache::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
    pool_.Shutdown();
  }

  cache::ManualClock clock_;            // the engines' clock (TTLs)
  metrics::Metrics metrics_{"memory"};  // outlives the server that records into it
  config::Config config_;
  GatedStore store_;
  service::WorkerPool pool_{2, 100};
  static constexpr size_t kMaxQueued = 64;  // small, so a test can overflow it
  std::unique_ptr<service::NamespaceSet> namespaces_;
  std::unique_ptr<service::WatchHub> hub_;  // outlives the server
  std::unique_ptr<service::CacheService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::string address_;
  std::string probe_address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Cache::Stub> stub_;
};

TEST_F(GrpcServerTest, PutThenGetReturnsValueAndVersion) {
  grpc::ClientContext put_ctx;
  v1::PutRequest put;
  put.set_key("user:1");
  put.set_value("alice");
  v1::PutResponse put_resp;
  ASSERT_TRUE(stub_->Put(&put_ctx, put, &put_resp).ok());
  EXPECT_GT(put_resp.version(), 0u);

  grpc::ClientContext get_ctx;
  v1::GetRequest get;
  get.set_key("user:1");
  v1::GetResponse get_resp;
  ASSERT_TRUE(stub_->Get(&get_ctx, get, &get_resp).ok());
  EXPECT_TRUE(get_resp.found());
  EXPECT_EQ(get_resp.value(), "alice");
  EXPECT_EQ(get_resp.version(), put_resp.version());
  EXPECT_EQ(get_resp.source(), v1::SOURCE_CACHE);
}

// TTLs through the API (#15): a namespace's ttl and negative_ttl, and a
// Put's ttl_ms, on the engines' manual clock.
class GrpcServerTtlTest : public GrpcServerTest {
 protected:
  void Configure() override {
    config::NamespaceConfig def{"default", absl::ZeroDuration(), 0};
    config::NamespaceConfig timed{"timed", absl::Seconds(60), 0.5};
    timed.negative_ttl = absl::Seconds(5);
    config_.namespaces = {def, timed};
  }
  v1::GetResponse Get(const std::string& ns, const std::string& key) {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_namespace_(ns);
    req.set_key(key);
    v1::GetResponse resp;
    EXPECT_TRUE(stub_->Get(&ctx, req, &resp).ok());
    return resp;
  }
  uint64_t Put(const std::string& ns, const std::string& key, const std::string& value,
               uint64_t ttl_ms = 0) {
    grpc::ClientContext ctx;
    v1::PutRequest req;
    req.set_namespace_(ns);
    req.set_key(key);
    req.set_value(value);
    req.set_ttl_ms(ttl_ms);
    v1::PutResponse resp;
    EXPECT_TRUE(stub_->Put(&ctx, req, &resp).ok());
    return resp.version();
  }
};

TEST_F(GrpcServerTtlTest, NamespaceTtlExpiresCachedCopiesAndNegativeTtlAbsentOnes) {
  Put("timed", "k", "v");
  EXPECT_EQ(Get("timed", "k").source(), v1::SOURCE_CACHE);
  EXPECT_EQ(Get("timed", "nope").source(), v1::SOURCE_STORE);  // cached as absent
  EXPECT_EQ(Get("timed", "nope").source(), v1::SOURCE_CACHE);
  clock_.Advance(absl::Seconds(6));  // past negative_ttl, within ttl
  EXPECT_EQ(Get("timed", "nope").source(), v1::SOURCE_STORE);
  EXPECT_EQ(Get("timed", "k").source(), v1::SOURCE_CACHE);
  clock_.Advance(absl::Seconds(55));  // past ttl
  const v1::GetResponse expired = Get("timed", "k");
  EXPECT_EQ(expired.source(), v1::SOURCE_STORE);
  EXPECT_EQ(expired.value(), "v") << "the store's value does not expire";
  // "default" has no ttl: nothing expires.
  Put("", "forever", "v");
  clock_.Advance(absl::Hours(1000));
  EXPECT_EQ(Get("", "forever").source(), v1::SOURCE_CACHE);
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, v1::StatsRequest(), &stats).ok());
  for (const v1::NamespaceStats& ns : stats.namespaces()) {
    if (ns.namespace_() == "timed") {
      EXPECT_GE(ns.expirations(), 2u);
    } else {
      EXPECT_EQ(ns.expirations(), 0u) << ns.namespace_();
    }
  }
}

TEST_F(GrpcServerTtlTest, PutTtlOverridesTheNamespaceTtl) {
  Put("timed", "short", "v", /*ttl_ms=*/2000);   // shorter than the namespace's 60 s
  Put("", "short", "v", /*ttl_ms=*/2000);        // "default" has none
  Put("timed", "long", "v", /*ttl_ms=*/600000);  // longer than the namespace's
  clock_.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(Get("timed", "short").source(), v1::SOURCE_CACHE);
  EXPECT_EQ(Get("", "short").source(), v1::SOURCE_CACHE);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Get("timed", "short").source(), v1::SOURCE_STORE);
  EXPECT_EQ(Get("", "short").source(), v1::SOURCE_STORE);
  clock_.Advance(absl::Seconds(120));  // past the namespace's ttl, within the Put's
  EXPECT_EQ(Get("timed", "long").source(), v1::SOURCE_CACHE);
  clock_.Advance(absl::Seconds(600));
  EXPECT_EQ(Get("timed", "long").source(), v1::SOURCE_STORE);
}

// WriteBatch (#15) through gRPC: versions per key in order, the writes in
// the cache (read-your-writes), all or nothing on a failed precondition,
// and the documented INVALID_ARGUMENTs.
TEST_F(GrpcServerTest, WriteBatchWritesAllOrNothing) {
  auto batch = [this](const std::vector<v1::BatchWrite>& writes, v1::WriteBatchResponse* resp) {
    grpc::ClientContext ctx;
    v1::WriteBatchRequest req;
    for (const v1::BatchWrite& w : writes) *req.add_writes() = w;
    return stub_->WriteBatch(&ctx, req, resp);
  };
  auto put = [](const std::string& key, const std::string& value) {
    v1::BatchWrite w;
    w.set_key(key);
    w.set_value(value);
    return w;
  };
  v1::WriteBatchResponse resp;
  ASSERT_TRUE(batch({put("a", "1"), put("b", "2")}, &resp).ok());
  ASSERT_EQ(resp.results_size(), 2);
  EXPECT_EQ(resp.results(0).key(), "a");
  EXPECT_LT(resp.results(0).version(), resp.results(1).version());
  const uint64_t va = resp.results(0).version();

  v1::BatchWrite stale = put("a", "x");
  stale.set_if_version(va + 100);
  v1::BatchWrite del;
  del.set_key("b");
  del.set_delete_(true);
  grpc::Status s = batch({del, stale}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(s.error_message(), HasSubstr("writes[1]"));

  v1::BatchWrite cas = put("a", "3");
  cas.set_if_version(va);
  ASSERT_TRUE(batch({del, cas}, &resp).ok());
  EXPECT_TRUE(resp.results(0).found());
  for (const auto& [key, found, value] : std::vector<std::tuple<std::string, bool, std::string>>{
           {"a", true, "3"}, {"b", false, ""}}) {
    grpc::ClientContext ctx;
    v1::GetRequest get;
    get.set_key(key);
    v1::GetResponse got;
    ASSERT_TRUE(stub_->Get(&ctx, get, &got).ok());
    EXPECT_EQ(got.found(), found) << key;
    EXPECT_EQ(got.value(), value) << key;
    EXPECT_EQ(got.source(), v1::SOURCE_CACHE) << key << ": the batch's writes are cached";
  }

  EXPECT_EQ(batch({}, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = batch({put("a", "1"), put("a", "2")}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("a batch writes each key once"));
  v1::BatchWrite bad_del = del;
  bad_del.set_if_absent(true);
  s = batch({bad_del}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("writes[0]: if_absent is for puts"));
}

// CONSISTENCY_CACHE_ONLY (#15): a hit as usual; a miss never reaches the
// store and says SOURCE_NOT_CACHED, in Get and BatchGet.
TEST_F(GrpcServerTest, CacheOnlyReadsNeverGoToTheStore) {
  store_.memory().Put("default", "stored", "v", store::Precondition::None(), {}).IgnoreError();
  {
    grpc::ClientContext ctx;
    v1::PutRequest put;
    put.set_key("cached");
    put.set_value("c");
    v1::PutResponse resp;
    ASSERT_TRUE(stub_->Put(&ctx, put, &resp).ok());
  }
  store_.Close();  // a load would now hang: CACHE_ONLY must not make one
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetRequest get;
  get.set_key("stored");
  get.set_consistency(v1::CONSISTENCY_CACHE_ONLY);
  v1::GetResponse got;
  ASSERT_TRUE(stub_->Get(&ctx, get, &got).ok());
  EXPECT_FALSE(got.found());
  EXPECT_EQ(got.source(), v1::SOURCE_NOT_CACHED);

  grpc::ClientContext batch_ctx;
  batch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::BatchGetRequest batch;
  batch.add_keys("cached");
  batch.add_keys("stored");
  batch.set_consistency(v1::CONSISTENCY_CACHE_ONLY);
  v1::BatchGetResponse answers;
  ASSERT_TRUE(stub_->BatchGet(&batch_ctx, batch, &answers).ok());
  ASSERT_EQ(answers.entries_size(), 2);
  EXPECT_EQ(answers.entries(0).value(), "c");
  EXPECT_EQ(answers.entries(0).source(), v1::SOURCE_CACHE);
  EXPECT_FALSE(answers.entries(1).found());
  EXPECT_EQ(answers.entries(1).source(), v1::SOURCE_NOT_CACHED);
  store_.Open();
}

TEST_F(GrpcServerTest, BadInputGetsTheDocumentedCodes) {
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    v1::GetResponse resp;
    grpc::Status s = stub_->Get(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("key is empty"));
  }
  {
    grpc::ClientContext ctx;
    v1::PutRequest req;
    req.set_key("k");
    req.set_value(std::string(2 << 20, 'x'));
    v1::PutResponse resp;
    grpc::Status s = stub_->Put(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("max_value_bytes"));
  }
  {
    grpc::ClientContext ctx;
    v1::PutRequest req;
    req.set_key("k");
    req.set_value(std::string(5 << 20, 'x'));
    v1::PutResponse resp;
    EXPECT_EQ(stub_->Put(&ctx, req, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext ctx;
    v1::PutRequest req;
    req.set_key("k");
    req.set_if_version(12345);
    v1::PutResponse resp;
    grpc::Status s = stub_->Put(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_THAT(s.error_message(), HasSubstr("expected version 12345"));
  }
  {
    grpc::ClientContext ctx;
    v1::StatsRequest req;
    req.set_namespace_("nope");
    v1::StatsResponse resp;
    EXPECT_EQ(stub_->Stats(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // And the server still serves.
  grpc::ClientContext ctx;
  v1::StatsResponse resp;
  ASSERT_TRUE(stub_->Stats(&ctx, v1::StatsRequest(), &resp).ok());
  ASSERT_EQ(resp.namespaces_size(), 1);
  EXPECT_EQ(resp.namespaces(0).namespace_(), "default");
}

using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

ServingStatus CheckHealth(const std::shared_ptr<grpc::Channel>& channel, const std::string& name) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(name);
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_TRUE(health->Check(&ctx, req, &resp).ok()) << name;
  return resp.status();
}

TEST_F(GrpcServerTest, ReadinessFollowsSetReadyLivenessDoesNot) {
  const auto probe = grpc::CreateChannel(probe_address_, grpc::InsecureChannelCredentials());
  for (const auto& channel : {channel_, probe}) {
    EXPECT_EQ(CheckHealth(channel, "liveness"), grpc::health::v1::HealthCheckResponse::SERVING);
    for (const char* name : {"readiness", "", "cachecar.v1.Cache"}) {
      EXPECT_EQ(CheckHealth(channel, name), grpc::health::v1::HealthCheckResponse::NOT_SERVING)
          << "not ready before the first SetReady: " << name;
    }
  }
  server_->SetReady(true);
  for (const auto& channel : {channel_, probe}) {
    for (const char* name : {"liveness", "readiness", "", "cachecar.v1.Cache"}) {
      EXPECT_EQ(CheckHealth(channel, name), grpc::health::v1::HealthCheckResponse::SERVING) << name;
    }
  }
  server_->SetReady(false);
  EXPECT_EQ(CheckHealth(probe, "readiness"), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(CheckHealth(probe, "liveness"), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(GrpcServerTest, ProbePortServesOnlyHealth) {
  const auto probe = grpc::CreateChannel(probe_address_, grpc::InsecureChannelCredentials());
  auto stub = v1::Cache::NewStub(probe);
  grpc::ClientContext ctx;
  v1::GetRequest req;
  req.set_key("k");
  v1::GetResponse resp;
  EXPECT_EQ(stub->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(GrpcServerTest, EveryCallIsCountedByMethodAndCode) {
  {
    grpc::ClientContext ctx;
    v1::GetRequest req;
    req.set_key("");  // INVALID_ARGUMENT
    v1::GetResponse resp;
    EXPECT_EQ(stub_->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    v1::PutRequest req;
    req.set_key("k");
    req.set_value("v");
    v1::PutResponse resp;
    ASSERT_TRUE(stub_->Put(&ctx, req, &resp).ok());
  }
  const std::string text = metrics_.Render();
  EXPECT_THAT(text,
              HasSubstr("cachecar_requests_total{code=\"INVALID_ARGUMENT\",method=\"Get\"} 1"));
  EXPECT_THAT(text, HasSubstr("cachecar_requests_total{code=\"OK\",method=\"Put\"} 3"));
  EXPECT_THAT(text, HasSubstr("cachecar_request_duration_seconds_count{method=\"Put\"} 3"));
}

TEST_F(GrpcServerTest, HealthIsServingThenNotServingOnShutdown) {
  server_->SetReady(true);
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* name : {"", "cachecar.v1.Cache"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(name);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("no.such.Service");
    grpc::health::v1::HealthCheckResponse resp;
    EXPECT_EQ(health->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // A Watch sees SERVING, then NOT_SERVING when the server shuts down, and
  // the stream ends instead of holding the shutdown for its grace period.
  grpc::ClientContext watch_ctx;
  grpc::health::v1::HealthCheckRequest req;
  auto reader = health->Watch(&watch_ctx, req);
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(30));
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << "shutdown waited out its grace";
}

TEST_F(GrpcServerTest, ThousandConcurrentGetsOnAMissingKeyMakeOneStoreLoad) {
  constexpr int kCalls = 1000;
  struct Call {
    grpc::ClientContext ctx;
    v1::GetRequest request;
    v1::GetResponse response;
    grpc::Status status;
  };
  std::vector<Call> calls(kCalls);
  absl::Mutex mu;
  int done = 0;
  for (Call& call : calls) {
    call.request.set_key("cold-key");
    stub_->async()->Get(&call.ctx, &call.request, &call.response,
                        [&mu, &done, &call](grpc::Status s) {
                          absl::MutexLock lock(&mu);
                          call.status = std::move(s);
                          ++done;
                        });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* d) { return *d == kCalls; }, &done));
  }
  for (const Call& call : calls) {
    ASSERT_TRUE(call.status.ok()) << call.status.error_message();
    EXPECT_FALSE(call.response.found());
  }
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, v1::StatsRequest(), &stats).ok());
  EXPECT_EQ(stats.namespaces(0).loads(), 1u);
}

TEST_F(GrpcServerTest, ByteBoundHoldsWhenFillingPastMaxBytes) {
  const uint64_t max_bytes = config_.max_bytes;
  const std::string value(8 << 10, 'v');  // well under a shard's share
  const int puts = static_cast<int>(2 * max_bytes / value.size());
  for (int i = 0; i < puts; ++i) {
    grpc::ClientContext ctx;
    v1::PutRequest put;
    put.set_key("k" + std::to_string(i));
    put.set_value(value);
    v1::PutResponse resp;
    ASSERT_TRUE(stub_->Put(&ctx, put, &resp).ok());
  }
  grpc::ClientContext ctx;
  v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, v1::StatsRequest(), &stats).ok());
  const v1::NamespaceStats& ns = stats.namespaces(0);
  EXPECT_EQ(ns.max_bytes(), max_bytes);
  EXPECT_LE(ns.bytes(), max_bytes);
  EXPECT_GT(ns.bytes(), 0u);
  EXPECT_GT(ns.evictions(), 0u);
  EXPECT_LT(ns.entries(), static_cast<uint64_t>(puts));
}

TEST_F(GrpcServerTest, CallerDeadlineIsHonouredWhileTheStoreIsSlow) {
  store_.Close();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  v1::GetRequest req;
  req.set_key("slow");
  v1::GetResponse resp;
  // The gate stays closed until the call has returned: it cannot finish in time.
  EXPECT_EQ(stub_->Get(&ctx, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  store_.Open();
}

TEST_F(GrpcServerTest, ShutdownLetsCallsInFlightFinishAndRefusesNewOnes) {
  store_.Close();
  grpc::ClientContext ctx;
  v1::GetRequest req;
  req.set_key("in-flight");
  v1::GetResponse resp;
  Notification answered;
  grpc::Status status;
  stub_->async()->Get(&ctx, &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    answered.Notify();
  });
  store_.AwaitWaiting(1);  // the Get is in flight, held in the store

  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(60)); });
  // New calls are refused once shutdown has begun (bounded: each call is quick).
  grpc::StatusCode refused = grpc::StatusCode::OK;
  for (int i = 0; i < 100000 && refused == grpc::StatusCode::OK; ++i) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::StatsResponse r;
    refused = stub_->Stats(&c, v1::StatsRequest(), &r).error_code();
  }
  // gRPC refuses calls that arrive on a server shutting down (CANCELLED on an
  // open connection, UNAVAILABLE on a new one).
  EXPECT_NE(refused, grpc::StatusCode::OK);

  store_.Open();  // the in-flight call may now finish, inside the grace period
  answered.WaitForNotification();
  shutdown.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(resp.found());
  server_.reset();
}

// --- Watch ------------------------------------------------------------------

service::Change MakeChange(std::string key, uint64_t version,
                           service::ChangeOp op = service::ChangeOp::kUpsert, bool local = false) {
  service::Change c;
  c.ns = "default";
  c.key = std::move(key);
  c.version = version;
  c.op = op;
  c.local = local;
  return c;
}

// Opens a Watch; returns once the server has subscribed (its headers came).
std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> OpenWatch(v1::Cache::Stub& stub,
                                                              grpc::ClientContext& ctx,
                                                              const std::string& prefix,
                                                              const std::string& ns = "") {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchRequest req;
  req.set_namespace_(ns);
  req.set_key_prefix(prefix);
  auto reader = stub.Watch(&ctx, req);
  reader->WaitForInitialMetadata();
  return reader;
}

// The status a stream that should send nothing more ends with.
grpc::Status EndOfStream(grpc::ClientReader<v1::WatchEvent>& reader) {
  v1::WatchEvent event;
  EXPECT_FALSE(reader.Read(&event)) << "unexpected event " << event.ShortDebugString();
  return reader.Finish();
}

// Waits (bounded) until the hub has `n` watchers.
bool AwaitWatchers(const service::WatchHub& hub, size_t n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (hub.watcher_count() != n) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST_F(GrpcServerTest, WatchStreamsChangesInOrderFilteredByPrefix) {
  grpc::ClientContext ctx;
  auto reader = OpenWatch(*stub_, ctx, "user:");
  ASSERT_EQ(hub_->watcher_count(), 1u);
  hub_->Publish(MakeChange("user:1", 1));
  hub_->Publish(MakeChange("order:1", 2));  // not the prefix
  hub_->Publish(MakeChange("user:2", 3, service::ChangeOp::kDelete, /*local=*/true));
  hub_->Publish(MakeChange("user:1", 0, service::ChangeOp::kInvalidate));
  hub_->Publish(MakeChange("", 5, service::ChangeOp::kFlush));  // reaches every prefix

  struct Want {
    const char* key;
    uint64_t version;
    v1::WatchOp op;
    bool local;
  };
  const Want wants[] = {{"user:1", 1, v1::WATCH_OP_UPSERT, false},
                        {"user:2", 3, v1::WATCH_OP_DELETE, true},
                        {"user:1", 0, v1::WATCH_OP_INVALIDATE, false},
                        {"", 5, v1::WATCH_OP_FLUSH, false}};
  for (const Want& want : wants) {
    v1::WatchEvent event;
    ASSERT_TRUE(reader->Read(&event)) << "expected " << want.key << " @" << want.version;
    EXPECT_EQ(event.key(), want.key);
    EXPECT_EQ(event.version(), want.version);
    EXPECT_EQ(event.op(), want.op);
    EXPECT_EQ(event.local(), want.local);
  }
  ctx.TryCancel();
  EXPECT_EQ(EndOfStream(*reader).error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(GrpcServerTest, WatchUnknownNamespaceIsInvalidArgument) {
  grpc::ClientContext ctx;
  auto reader = OpenWatch(*stub_, ctx, "", "nope");
  grpc::Status s = EndOfStream(*reader);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("unknown namespace 'nope'"));
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

TEST_F(GrpcServerTest, WatchClientCancelUnsubscribes) {
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext ctx;
    auto reader = OpenWatch(*stub_, ctx, "");
    ASSERT_EQ(hub_->watcher_count(), 1u);
    hub_->Publish(MakeChange("k", 1));
    v1::WatchEvent event;
    ASSERT_TRUE(reader->Read(&event));
    ctx.TryCancel();
    while (reader->Read(&event)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(AwaitWatchers(*hub_, 0)) << "still " << hub_->watcher_count();
    hub_->Publish(MakeChange("k", 2));  // nobody to deliver to
  }
}

TEST_F(GrpcServerTest, WatchThatFallsBehindEndsWithResourceExhausted) {
  grpc::ClientContext ctx;
  auto reader = OpenWatch(*stub_, ctx, "");
  // Far more than the queue holds, faster than one-at-a-time writes drain it.
  constexpr uint64_t kChanges = 50 * kMaxQueued;
  for (uint64_t v = 1; v <= kChanges; ++v) hub_->Publish(MakeChange("k", v));
  v1::WatchEvent event;
  uint64_t last = 0;
  while (reader->Read(&event)) {
    ASSERT_EQ(event.version(), last + 1) << "nothing is skipped before the end";
    last = event.version();
  }
  grpc::Status s = reader->Finish();
  EXPECT_LT(last, kChanges);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("call Watch again"));
  EXPECT_TRUE(AwaitWatchers(*hub_, 0));
}

TEST_F(GrpcServerTest, ShutdownEndsWatchStreamsWithUnavailable) {
  grpc::ClientContext ctx;
  auto reader = OpenWatch(*stub_, ctx, "");
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "shutdown waited for the stream";
  grpc::Status s = EndOfStream(*reader);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("cachecar is shutting down"));
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

TEST_F(GrpcServerTest, WatchWithoutAHubIsUnimplemented) {
  ServerOptions options;
  options.listen = {"127.0.0.1:0"};
  auto server = GrpcServer::Start(options, *service_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Cache::NewStub(
      grpc::CreateChannel((*server)->bound_addresses()[0], grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  auto reader = OpenWatch(*stub, ctx, "");
  EXPECT_EQ(EndOfStream(*reader).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(GrpcServerTest, SecondServerOnTheSamePortFailsLoudly) {
  ServerOptions options;
  options.listen = {address_};
  auto second = GrpcServer::Start(options, *service_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("already in use"));
}

}  // namespace
}  // namespace cachecar::server
