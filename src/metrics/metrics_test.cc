// Metrics: names and labels in the exposition, lazily made series, the
// scrape-time namespace numbers, the store decorator, and the endpoint.
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/instrumented_store.h"
#include "store/memory/memory_store.h"

namespace cachecar::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, MethodLabelsAreBounded) {
  EXPECT_EQ(Metrics::MethodLabel("/cachecar.v1.Cache/BatchGet"), "BatchGet");
  EXPECT_EQ(Metrics::MethodLabel("/grpc.health.v1.Health/Watch"), "Health");
  EXPECT_EQ(Metrics::MethodLabel("/grpc.reflection.v1alpha.ServerReflection/X"), "Reflection");
  EXPECT_EQ(Metrics::MethodLabel("/cachecar.v1.Cache/NoSuch"), "other");
  EXPECT_EQ(Metrics::MethodLabel("/evil/" + std::string(1000, 'x')), "other");
}

TEST(MetricsTest, RequestsAreCountedByMethodAndCodeOnlyOnceSeen) {
  Metrics m("memory");
  m.ObserveRequest("/cachecar.v1.Cache/Get", 0, absl::Microseconds(80));
  m.ObserveRequest("/cachecar.v1.Cache/Get", 0, absl::Microseconds(120));
  m.ObserveRequest("/cachecar.v1.Cache/Put", 10, absl::Milliseconds(3));
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("cachecar_requests_total{code=\"OK\",method=\"Get\"} 2"));
  EXPECT_THAT(text, HasSubstr("cachecar_requests_total{code=\"ABORTED\",method=\"Put\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("code=\"INTERNAL\"")));
  EXPECT_THAT(
      text, HasSubstr("cachecar_request_duration_seconds_bucket{method=\"Get\",le=\"0.0001\"} 1"));
  EXPECT_THAT(text, HasSubstr("# TYPE cachecar_request_duration_seconds histogram"));
}

// The `code` label values are part of the exposition (dashboards match
// them): grpc::StatusCode's names, for every code, on requests and store
// calls alike; a code out of range counts as UNKNOWN.
TEST(MetricsTest, CodeLabelsAreTheStatusCodeNames) {
  const std::vector<std::string> names = {"OK",
                                          "CANCELLED",
                                          "UNKNOWN",
                                          "INVALID_ARGUMENT",
                                          "DEADLINE_EXCEEDED",
                                          "NOT_FOUND",
                                          "ALREADY_EXISTS",
                                          "PERMISSION_DENIED",
                                          "RESOURCE_EXHAUSTED",
                                          "FAILED_PRECONDITION",
                                          "ABORTED",
                                          "OUT_OF_RANGE",
                                          "UNIMPLEMENTED",
                                          "INTERNAL",
                                          "UNAVAILABLE",
                                          "DATA_LOSS",
                                          "UNAUTHENTICATED"};
  Metrics m("memory");
  for (int code = 0; code < static_cast<int>(names.size()); ++code) {
    m.ObserveRequest("/cachecar.v1.Cache/Get", code, absl::Microseconds(1));
    m.ObserveStore("load", static_cast<absl::StatusCode>(code), absl::Microseconds(1));
  }
  m.ObserveRequest("/cachecar.v1.Cache/Put", 17, absl::Microseconds(1));
  m.ObserveRequest("/cachecar.v1.Cache/Put", -1, absl::Microseconds(1));
  const std::string text = m.Render();
  for (const std::string& name : names) {
    EXPECT_THAT(text, HasSubstr("cachecar_requests_total{code=\"" + name + "\",method=\"Get\"} 1"));
    EXPECT_THAT(text, HasSubstr("cachecar_store_operations_total{code=\"" + name +
                                "\",op=\"load\",store=\"memory\"} 1"));
  }
  EXPECT_THAT(text, HasSubstr("cachecar_requests_total{code=\"UNKNOWN\",method=\"Put\"} 2"));
}

TEST(MetricsTest, NamespaceNumbersAreReadAtScrapeTime) {
  Metrics m("memory");
  uint64_t hits = 1;
  m.SetNamespaceSource([&hits] {
    service::NamespaceStatsView s;
    s.name = "users";
    s.engine.hits = hits;
    s.engine.entries = 7;
    s.engine.fills_rejected = 2;
    return std::vector<service::NamespaceStatsView>{s};
  });
  m.SetWorkerQueueSource([] { return size_t{4}; });
  EXPECT_THAT(m.Render(), HasSubstr("cachecar_cache_hits_total{namespace=\"users\"} 1"));
  hits = 5;
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("cachecar_cache_hits_total{namespace=\"users\"} 5"));
  EXPECT_THAT(text, HasSubstr("cachecar_cache_entries{namespace=\"users\"} 7"));
  EXPECT_THAT(text, HasSubstr("cachecar_fill_tickets_rejected_total{namespace=\"users\"} 2"));
  EXPECT_THAT(text, HasSubstr("cachecar_worker_queue_tasks 4"));
}

TEST(MetricsTest, OutboxGaugesAppearOnlyWhenTheStoreHasAnOutbox) {
  Metrics m("memory");
  m.SetOutboxSource([] { return Metrics::OutboxSample{}; });
  EXPECT_THAT(m.Render(), Not(HasSubstr("cachecar_outbox")));
  m.SetOutboxSource([] { return Metrics::OutboxSample{12, 3.5}; });
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("cachecar_outbox_rows 12"));
  EXPECT_THAT(text, HasSubstr("cachecar_outbox_oldest_age_seconds 3.5"));
}

TEST(MetricsTest, LocalReadsAppearOnlyWithAPublishedCache) {
  Metrics m("memory");
  EXPECT_THAT(m.Render(), Not(HasSubstr("cachecar_local_read")));
  m.SetLocalReadsSource([] {
    Metrics::LocalReadsSample s;
    s.serving = true;
    s.trusted = true;
    s.mapped_bytes = 4096;
    s.clients = 2;
    s.reports = 10;
    s.reports_rejected = 1;
    s.touches = 300;
    s.touches_missed = 4;
    return s;
  });
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_serving 1"));
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_trusted 1"));
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_clients 2"));
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_reports_total{result=\"rejected\"} 1"));
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_touches_total{result=\"applied\"} 300"));
  EXPECT_THAT(text, HasSubstr("cachecar_local_read_mapped_bytes 4096"));
}

TEST(MetricsTest, InstrumentedStoreTimesEveryCallAndReportsReachability) {
  Metrics m("memory");
  store::MemoryStore inner;
  InstrumentedStore s(inner, m);
  ASSERT_TRUE(s.Put("ns", "k", "v", store::Precondition::None(), {}).ok());
  EXPECT_FALSE(s.Put("ns", "k", "v", store::Precondition::IfAbsent(), {}).ok());
  ASSERT_TRUE(s.Load("ns", "k", {}).ok());
  ASSERT_TRUE(s.CheckHealth({}).ok());
  const std::string text = m.Render();
  EXPECT_THAT(
      text,
      HasSubstr("cachecar_store_operations_total{code=\"OK\",op=\"put\",store=\"memory\"} 1"));
  EXPECT_THAT(
      text,
      HasSubstr("cachecar_store_operations_total{code=\"ABORTED\",op=\"put\",store=\"memory\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("cachecar_store_duration_seconds_count{op=\"load\",store=\"memory\"} 1"));
  EXPECT_THAT(text, HasSubstr("cachecar_store_reachable{store=\"memory\"} 1"));
}

TEST(MetricsEndpointTest, BusyPortIsAClearError) {
  Metrics m("memory");
  auto first = MetricsEndpoint::Start("127.0.0.1:0", m);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_GT((*first)->port(), 0);
  auto second = MetricsEndpoint::Start("127.0.0.1:" + std::to_string((*first)->port()), m);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("metrics_listen"));
}

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

// The answer to `request`, read until the server closes (at most 10 s).
std::string Fetch(int port, const std::string& request) {
  const int fd = Connect(port);
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buffer[4096];
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

TEST(MetricsEndpointTest, ServesTheExposition) {
  Metrics m("memory");
  m.SetReady(true);
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", m);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const std::string answer = Fetch((*endpoint)->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(answer, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(answer, HasSubstr("cachecar_ready 1"));
  EXPECT_THAT(Fetch((*endpoint)->port(), "GET /other HTTP/1.1\r\n\r\n"),
              HasSubstr("HTTP/1.1 404 "));
}

// Issue #17: one half-sent request held the single-threaded /metrics for
// ~30 s.
TEST(MetricsEndpointTest, HalfSentRequestsDoNotBlockScrapes) {
  Metrics m("memory");
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", m);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  std::vector<int> half;
  for (int i = 0; i < 8; ++i) {
    half.push_back(Connect((*endpoint)->port()));
    constexpr absl::string_view kHalf = "GET /metrics HTTP/1.1\r\nHost:";
    send(half.back(), kHalf.data(), kHalf.size(), MSG_NOSIGNAL);
  }
  // Not a race fix: it lets a server start reading the half-sent requests
  // (the old one-thread endpoint then held every scrape for 30 s).
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  EXPECT_THAT(Fetch((*endpoint)->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // not after the others' 3 s deadline
  for (int fd : half) close(fd);
}

// Issue #17: --metrics-listen=256.0.0.0:P bound 0.0.0.0.
TEST(MetricsEndpointTest, AnInvalidAddressIsRefusedNotWidened) {
  Metrics m("memory");
  for (const char* bad : {"256.0.0.0:0", "999.1.1.1:1", "1.2.3:0", "localhost:0"}) {
    auto endpoint = MetricsEndpoint::Start(bad, m);
    EXPECT_EQ(endpoint.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(endpoint.status().message(), HasSubstr("metrics_listen")) << bad;
  }
}

}  // namespace
}  // namespace cachecar::metrics
