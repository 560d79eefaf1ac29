// Listen addresses: parsing, and refusing to share or steal an address.
#include "server/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::server {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  char tmpl[] = "/tmp/cachecar-test-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(ParseListenAddressTest, AcceptsTcpV6AndUnixForms) {
  auto tcp = ParseListenAddress("127.0.0.1:50051");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 50051);
  auto v6 = ParseListenAddress("[::1]:7000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  auto unix3 = ParseListenAddress("unix:///run/c.sock");
  ASSERT_TRUE(unix3.ok());
  EXPECT_EQ(unix3->kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(unix3->path, "/run/c.sock");
  EXPECT_EQ(ParseListenAddress("unix:/run/c.sock")->path, "/run/c.sock");
}

TEST(ParseListenAddressTest, RejectsBadFormsWithAHint) {
  EXPECT_THAT(ParseListenAddress("50051").status().message(), HasSubstr("host:port"));
  EXPECT_THAT(ParseListenAddress("localhost:99999").status().message(), HasSubstr("0 to 65535"));
  EXPECT_THAT(ParseListenAddress("unix://relative.sock").status().message(),
              HasSubstr("absolute path"));
  // gRPC would percent-decode this to /tmp/ccA.sock while we locked cc%41.sock.
  EXPECT_THAT(ParseListenAddress("unix:///tmp/cc%41.sock").status().message(),
              HasSubstr("may not contain"));
}

TEST(PreflightTcpTest, PortInUseIsAlreadyExists) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto address = ParseListenAddress("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  ASSERT_TRUE(address.ok());
  absl::Status s = PreflightTcp(*address);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("already in use"));
  close(fd);
  EXPECT_TRUE(PreflightTcp(*address).ok());
}

TEST(UnixSocketClaimTest, SecondClaimOnTheSamePathFails) {
  const std::string path = TempDir() + "/c.sock";
  auto first = UnixSocketClaim::Claim(path);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = UnixSocketClaim::Claim(path);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("another cachecar"));
  first->reset();
  EXPECT_TRUE(UnixSocketClaim::Claim(path).ok()) << "released on destruction";
}

TEST(UnixSocketClaimTest, RefusesARegularFileAndLeavesItAlone) {
  const std::string path = TempDir() + "/not-a-socket";
  std::ofstream(path) << "precious";
  auto claim = UnixSocketClaim::Claim(path);
  EXPECT_THAT(claim.status().message(), HasSubstr("not a socket"));
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(UnixSocketClaimTest, RefusesALiveSocketOfAnotherProgram) {
  const std::string path = TempDir() + "/live.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  auto claim = UnixSocketClaim::Claim(path);
  EXPECT_THAT(claim.status().message(), HasSubstr("live server"));
  EXPECT_EQ(access(path.c_str(), F_OK), 0) << "a live socket must not be unlinked";
  close(fd);
}

TEST(UnixSocketClaimTest, RemovesAStaleSocket) {
  const std::string path = TempDir() + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // the file stays, nobody listens
  auto claim = UnixSocketClaim::Claim(path);
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace cachecar::server
