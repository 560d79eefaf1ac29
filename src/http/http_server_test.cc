// HttpServer over plain TCP on loopback: answers, refusals, the whole-
// request deadline, and that slow or greedy clients neither starve a good
// request nor hold unbounded memory. (TLS is exercised by the webhook's
// tests and tests/hostile.)
#include "http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

void Send(int fd, absl::string_view bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

// Everything the server sends until it closes, or until `wait` passes.
std::string ReadAll(int fd, absl::Duration wait = absl::Seconds(10)) {
  std::string out;
  const absl::Time end = absl::Now() + wait;
  char buffer[4096];
  while (absl::Now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

std::string Exchange(int port, absl::string_view request) {
  const int fd = Connect(port);
  Send(fd, request);
  std::string out = ReadAll(fd);
  close(fd);
  return out;
}

HttpResponse Echo(const HttpRequest& r) {
  return HttpResponse{200, "text/plain", absl::StrCat(r.method, " ", r.path, " ", r.body.size())};
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options, HttpHandler handler = Echo) {
  options.listen = "127.0.0.1:0";
  auto server = HttpServer::Start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(HttpServerTest, AnswersAndCloses) {
  auto server = StartServer({});
  EXPECT_EQ(Exchange(server->port(), "POST /mutate HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
            "Connection: close\r\n\r\nPOST /mutate 3");
}

TEST(HttpServerTest, RefusesWhatTheReaderRefuses) {
  auto server = StartServer({});
  EXPECT_THAT(Exchange(server->port(),
                       "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 100\r\n\r\nhello"),
              AllOf(StartsWith("HTTP/1.1 400 Bad Request\r\n"),
                    HasSubstr("Content-Length is given twice")));
  EXPECT_THAT(Exchange(server->port(), "POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
              StartsWith("HTTP/1.1 413 "));
}

// Issue #17: 32 clients dripping a byte every 5 s held every slot of the
// old webhook; a good request waited 29-43 s.
TEST(HttpServerTest, DrippingClientsDoNotStarveAGoodRequest) {
  HttpServerOptions options;
  options.max_connections = 16;
  options.request_timeout = absl::Seconds(30);  // longer than this test may take
  auto server = StartServer(options);
  std::vector<int> slow;
  for (int i = 0; i < 64; ++i) {
    slow.push_back(Connect(server->port()));
    Send(slow.back(), "POST /mutate HTTP/1.1\r\nContent-Length: 10\r\n\r\na");
  }
  const absl::Time start = absl::Now();
  const int good = Connect(server->port());
  Send(good, "GET /healthz HTTP/1.1\r\n\r\n");
  const std::string answer = ReadAll(good, absl::Seconds(10));
  close(good);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // not held until slow ones time out
  EXPECT_GE(server->counters().evicted, 48u);
  for (int fd : slow) close(fd);
}

TEST(HttpServerTest, AWholeRequestDeadlineNotAPerReadOne) {
  HttpServerOptions options;
  options.request_timeout = absl::Milliseconds(300);
  auto server = StartServer(options);
  const int fd = Connect(server->port());
  Send(fd, "POST /mutate HTTP/1.1\r\n");
  std::string answer;
  // A header line every 50 ms: each read comes quickly, the request never ends.
  for (int i = 0; i < 100 && answer.empty(); ++i) {
    send(fd, "X-A: b\r\n", 8, MSG_NOSIGNAL);
    answer = ReadAll(fd, absl::Milliseconds(50));
  }
  answer += ReadAll(fd, absl::Seconds(1));
  close(fd);
  EXPECT_THAT(answer, AllOf(StartsWith("HTTP/1.1 408 Request Timeout"),
                            HasSubstr("the whole request must arrive within 300ms")));
  // A connection that never sends a byte is closed without an answer.
  const int silent = Connect(server->port());
  EXPECT_EQ(ReadAll(silent, absl::Seconds(5)), "");
  close(silent);
  EXPECT_GE(server->counters().timed_out, 2u);
}

TEST(HttpServerTest, ClientsThatGoAwayEarlyAreNoProblem) {
  absl::Notification release;
  std::atomic<int> calls{0};
  auto server = StartServer({}, [&](const HttpRequest& r) {
    ++calls;
    if (r.path == "/slow") release.WaitForNotificationWithTimeout(absl::Seconds(5));
    return HttpResponse{200, "text/plain", std::string(1 << 20, 'x')};
  });
  close(Connect(server->port()));               // connects and closes
  const int partial = Connect(server->port());  // half a request
  Send(partial, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
  close(partial);
  const int gone = Connect(server->port());  // gone before its answer
  Send(gone, "GET /slow HTTP/1.1\r\n\r\n");
  linger hard{1, 0};
  setsockopt(gone, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  close(gone);  // RST: writing the 1 MiB answer fails
  release.Notify();
  EXPECT_THAT(Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
  EXPECT_EQ(calls.load(), 2);
}

TEST(HttpServerTest, RequestBytesHeldAreBounded) {
  HttpServerOptions options;
  options.max_buffered_bytes = 256 << 10;
  options.request_timeout = absl::Seconds(30);
  auto server = StartServer(options);
  std::vector<int> greedy;
  const std::string chunk(60 << 10, 'x');
  for (int i = 0; i < 16; ++i) {  // 16 x 60 KiB of bodies that never end
    greedy.push_back(Connect(server->port()));
    Send(greedy.back(), "POST / HTTP/1.1\r\nContent-Length: 4000000\r\n\r\n" + chunk);
  }
  // Each of the oldest got a 503 when the budget was exceeded.
  EXPECT_THAT(ReadAll(greedy[0], absl::Seconds(5)), StartsWith("HTTP/1.1 503 "));
  // The loop reads the 16 senders in its own time: wait (bounded) until it
  // has seen enough of them to be over budget ten times over.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (server->counters().evicted < 10u && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(server->counters().evicted, 10u);
  EXPECT_THAT(Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200 OK"));
  for (int fd : greedy) close(fd);
}

TEST(HttpServerTest, ListenAddressesAreNumericAndValid) {
  for (const char* bad : {"256.0.0.0:1", "999.1.1.1:1", "localhost:80", "1.2.3:80", "[::1:80",
                          "::1:80", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:-1", "nohost"}) {
    EXPECT_FALSE(ParseNumericHostPort(bad).ok()) << bad;
  }
  auto v4 = ParseNumericHostPort("0.0.0.0:8443");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 8443);
  auto v6 = ParseNumericHostPort("[::1]:9464");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(ParseNumericHostPort(":9464").ok());
  HttpServerOptions options;
  options.listen = "256.0.0.0:0";
  EXPECT_EQ(HttpServer::Start(options, Echo).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cachecar::http
