// What a hostile client can do to the gRPC edge (issue #17), over real gRPC
// on loopback: far-future deadlines, unknown enum values, BatchGet answers
// at the message limit, long Watch prefixes, connections that never speak,
// running out of descriptors, and the liveness check of dead listeners.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpc/support/time.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "cachecar/v1/cache.grpc.pb.h"
#include "common/mutex.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "server/deadline.h"
#include "server/grpc_server.h"
#include "server/listener_check.h"
#include "store/memory/memory_store.h"

namespace cachecar::server {
namespace {

using ::testing::HasSubstr;

TEST(DeadlineFromGrpcTest, FarFutureIsInfiniteNotPast) {
  EXPECT_EQ(DeadlineFromGrpc(gpr_inf_future(GPR_CLOCK_REALTIME)), absl::InfiniteFuture());
  EXPECT_EQ(DeadlineFromGrpc(gpr_inf_future(GPR_CLOCK_MONOTONIC)), absl::InfiniteFuture());
  // grpcurl -max-time 10000000000: now + 10^10 s, past what a system_clock
  // time_point (nanoseconds) can hold.
  gpr_timespec far = gpr_now(GPR_CLOCK_REALTIME);
  far.tv_sec += 10'000'000'000;
  EXPECT_GT(DeadlineFromGrpc(far), absl::Now() + absl::Hours(24 * 365 * 100));
  gpr_timespec soon =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN));
  const absl::Time t = DeadlineFromGrpc(soon);
  EXPECT_GT(t, absl::Now() + absl::Seconds(4));
  EXPECT_LT(t, absl::Now() + absl::Seconds(6));
}

class HostileGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(ConnectionLimits limits, absl::Duration check = absl::Seconds(5)) {
    config_.namespaces = {{"default", absl::ZeroDuration(), 0}};
    config_.max_bytes = 64 << 20;
    namespaces_ = std::make_unique<service::NamespaceSet>(config_);
    service::WatchHubOptions watch;
    watch.max_key_prefix_bytes = config_.max_key_bytes;
    hub_ = std::make_unique<service::WatchHub>(*namespaces_, watch);
    service_ = std::make_unique<service::CacheService>(service::Limits::FromConfig(config_),
                                                       *namespaces_, store_, pool_);
    ServerOptions options;
    options.listen = {"127.0.0.1:0"};
    options.probe_listen = {"127.0.0.1:0"};
    options.watch_hub = hub_.get();
    options.connections = limits;
    options.listener_check_interval = check;
    auto server = GrpcServer::Start(options, *service_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Cache::NewStub(
        grpc::CreateChannel(server_->bound_addresses()[0], grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
    pool_.Shutdown();
  }

  grpc::Status Put(const std::string& key, const std::string& value) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    v1::PutResponse resp;
    return stub_->Put(&ctx, req, &resp);
  }

  // A liveness Check on `address` (a fresh connection each time).
  static std::string Liveness(const std::string& address) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("liveness");
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = health->Check(&ctx, req, &resp);
    if (!s.ok()) return "error: " + s.error_message();
    return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  }

  config::Config config_;
  store::MemoryStore store_;
  service::WorkerPool pool_{2, 100};
  std::unique_ptr<service::NamespaceSet> namespaces_;
  std::unique_ptr<service::WatchHub> hub_;
  std::unique_ptr<service::CacheService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::Cache::Stub> stub_;
};

// Issue #17: a grpc-timeout past ~2.5 million hours failed every Put,
// Delete, STRONG Get and miss with DEADLINE_EXCEEDED.
TEST_F(HostileGrpcTest, AFarFutureDeadlineIsNoDeadline) {
  gpr_timespec far = gpr_now(GPR_CLOCK_REALTIME);
  far.tv_sec += 10'000'000'000;
  grpc::ClientContext put_ctx;
  put_ctx.set_deadline(far);
  v1::PutRequest put;
  put.set_key("k");
  put.set_value("v");
  v1::PutResponse put_resp;
  const grpc::Status s = stub_->Put(&put_ctx, put, &put_resp);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  grpc::ClientContext get_ctx;
  get_ctx.set_deadline(far);
  v1::GetRequest get;
  get.set_key("k");
  get.set_consistency(v1::CONSISTENCY_STRONG);
  v1::GetResponse get_resp;
  const grpc::Status g = stub_->Get(&get_ctx, get, &get_resp);
  EXPECT_TRUE(g.ok()) << g.error_code() << " " << g.error_message();
  EXPECT_EQ(get_resp.value(), "v");
}

// Issue #17: unknown Consistency values were taken as CACHED.
TEST_F(HostileGrpcTest, AnUnknownConsistencyIsInvalidArgument) {
  for (int value : {3, 7, -1}) {
    grpc::ClientContext ctx;
    v1::GetRequest get;
    get.set_key("k");
    get.set_consistency(static_cast<v1::Consistency>(value));
    v1::GetResponse resp;
    const grpc::Status s = stub_->Get(&ctx, get, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << value;
    EXPECT_THAT(s.error_message(), HasSubstr("is not known: use CONSISTENCY_CACHED"));
    grpc::ClientContext batch_ctx;
    v1::BatchGetRequest batch;
    batch.add_keys("k");
    batch.set_consistency(static_cast<v1::Consistency>(value));
    v1::BatchGetResponse batch_resp;
    EXPECT_EQ(stub_->BatchGet(&batch_ctx, batch, &batch_resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
}

// Issue #17: a BatchGet answer could exceed max_message_bytes once framing
// was counted, and the default client refused it (its own error, not ours).
TEST_F(HostileGrpcTest, BatchGetAnswersFitTheDefaultClient) {
  v1::BatchGetRequest batch;
  for (int i = 0; i < 4; ++i) {
    const std::string key = "big" + std::to_string(i);
    ASSERT_TRUE(Put(key, std::string(1 << 20, 'x')).ok());  // 4 x 1 MiB = the 4 MiB limit
    batch.add_keys(key);
  }
  grpc::ClientContext ctx;
  v1::BatchGetResponse resp;
  const grpc::Status s = stub_->BatchGet(&ctx, batch, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("ask for fewer keys per call"));  // ours
  // Just under: the answer arrives, and within the limit.
  ASSERT_TRUE(Put("big3", std::string((1 << 20) - 200, 'x')).ok());
  grpc::ClientContext fits_ctx;
  const grpc::Status fits = stub_->BatchGet(&fits_ctx, batch, &resp);
  ASSERT_TRUE(fits.ok()) << fits.error_message();
  EXPECT_LE(resp.ByteSizeLong(), 4u << 20);
}

// Issue #17: the Watch key_prefix length was not checked.
TEST_F(HostileGrpcTest, AWatchPrefixLongerThanAKeyIsInvalidArgument) {
  grpc::ClientContext ctx;
  v1::WatchRequest req;
  req.set_key_prefix(std::string(config_.max_key_bytes + 1, 'p'));
  auto reader = stub_->Watch(&ctx, req);
  v1::WatchEvent event;
  EXPECT_FALSE(reader->Read(&event));
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("over max_key_bytes"));
}

int ConnectTo(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True once the server has closed `fd` (within `wait`).
bool ClosedByServer(int fd, absl::Duration wait) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) <= 0) return false;
  char c;
  return recv(fd, &c, 1, 0) <= 0;
}

// Issue #17: connections that never sent the HTTP/2 preface were held
// forever; at the cap the oldest such one now makes room for a new one.
TEST_F(HostileGrpcTest, SilentConnectionsAreClosedAndCannotFillTheGate) {
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  ConnectionLimits limits;
  limits.max_connections = 20;
  limits.handshake_timeout = absl::Milliseconds(500);
  Start(limits);
  const std::string address = server_->bound_addresses()[0];
  std::vector<int> silent;
  for (int i = 0; i < 50; ++i) silent.push_back(ConnectTo(address));  // more than the cap
  ASSERT_TRUE(Put("k", "v").ok());                                    // a real client still gets in
  EXPECT_TRUE(ClosedByServer(silent[0], absl::Seconds(1))) << "evicted at the cap";
  EXPECT_TRUE(ClosedByServer(silent.back(), absl::Seconds(5))) << "closed at the timeout";
  for (int fd : silent) close(fd);
  EXPECT_TRUE(Put("k2", "v").ok());
}

// Issue #17: after one EMFILE, gRPC never accepted again while health stayed
// SERVING. Run in a child process, whose descriptor limit can be lowered.
#if defined(__SANITIZE_ADDRESS__)
#define CACHECAR_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHECAR_UNDER_ASAN 1
#endif
#endif

TEST_F(HostileGrpcTest, RunningOutOfDescriptorsDoesNotKillTheListener) {
#if defined(CACHECAR_UNDER_ASAN)
  // The ASan preset is ASan+UBSan: with every descriptor taken, UBSan's vptr
  // check misreports objects of Debian's libspdlog and libfmt as of the wrong
  // type (shared_ptr control blocks, spdlog::logger, fmt buffers) in the
  // child. The gcc build runs this test; hostile_e2e does the same against
  // the real binary.
  GTEST_SKIP() << "not under ASan+UBSan: the vptr check misfires while descriptors are exhausted";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child starts its own server
  EXPECT_EXIT(
      {
        const std::string address = server_->bound_addresses()[0];
        rlimit low{};
        getrlimit(RLIMIT_NOFILE, &low);
        // What is open now, plus a little: the clients below use it up.
        int highest = 0;
        for (int fd = 0; fd < 4096; ++fd) {
          if (fcntl(fd, F_GETFD) != -1) highest = fd;
        }
        low.rlim_cur = highest + 40;
        setrlimit(RLIMIT_NOFILE, &low);
        std::vector<int> hogs;
        for (int fd; (fd = ConnectTo(address)) >= 0 || errno == ECONNREFUSED;) {
          if (fd >= 0) hogs.push_back(fd);
          if (hogs.size() > 200) break;
        }
        // Descriptors are exhausted now: the server hits EMFILE accepting.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        for (int i = 0; i < 10 && !hogs.empty(); ++i) {
          close(hogs.back());
          hogs.pop_back();
        }
        low.rlim_cur = low.rlim_max;
        setrlimit(RLIMIT_NOFILE, &low);
        for (int fd : hogs) close(fd);
        std::exit(Put("after", "emfile").ok() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// The listener check: a listener that accepts nothing any more turns
// liveness NOT_SERVING (a probe that cannot even connect is dead too).
TEST(ListenerCheckTest, ProbesAnswerOnlyFromALiveServer) {
  // A socket that listens but nobody accepts: connect works, no SETTINGS.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string dead = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const absl::Status s = ListenerCheck::Probe(dead, absl::Milliseconds(300));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("no HTTP/2 SETTINGS"));

  Notification reported;
  std::string why;
  auto check = ListenerCheck::Start(
      {dead}, nullptr,
      [&](bool alive, const std::string& w) {
        if (alive) return;
        why = w;
        reported.Notify();
      },
      ListenerCheckOptions{absl::Milliseconds(50), absl::Milliseconds(100), 3});
  reported.WaitForNotification();
  EXPECT_THAT(why, HasSubstr("failed 3 probes in a row"));
  check.reset();
  close(fd);
}

TEST_F(HostileGrpcTest, TheListenerCheckPassesOnALiveServerAndItsProbePort) {
  for (const std::string& address :
       {server_->bound_addresses()[0], server_->bound_probe_addresses()[0]}) {
    EXPECT_TRUE(ListenerCheck::Probe(address, absl::Seconds(2)).ok()) << address;
    EXPECT_EQ(Liveness(address), "SERVING");
  }
}

}  // namespace
}  // namespace cachecar::server
