// Library log routing: protobuf's and gRPC core's lines reach our logger
// (so JSON logs stay JSON), rate-limited with a count of what was dropped.
#include "server/library_logs.h"

#include <grpc/support/log.h>

#include <sstream>

#include "cachecar/v1/cache.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LibraryLogsTest, ProtobufAndGrpcLinesGoThroughOurLoggerRateLimited) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  RouteLibraryLogs("info", LibraryLogLimits{3, absl::Hours(1)});

  // A key that is not UTF-8 in a proto3 string field: protobuf logs an
  // error for every such parse (issue #17: one raw stderr line per request).
  v1::GetRequest bad;
  const std::string wire = std::string("\x12\x02\xff\xfe", 4);  // key = "\xff\xfe"
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(bad.ParseFromString(wire));
  const std::string protobuf_lines = out.str();
  EXPECT_THAT(protobuf_lines, HasSubstr("libprotobuf wire_format_lite.cc:"));
  EXPECT_THAT(protobuf_lines, HasSubstr("invalid UTF-8"));
  size_t count = 0;
  for (size_t at = 0; (at = protobuf_lines.find("invalid UTF-8", at)) != std::string::npos; ++at) {
    ++count;
  }
  EXPECT_EQ(count, 3u) << "3 per window, then suppressed";

  gpr_log(GPR_ERROR, "a gRPC core error %d", 42);
  EXPECT_THAT(out.str(), HasSubstr("grpc library_logs_test.cc:"));
  EXPECT_THAT(out.str(), HasSubstr("a gRPC core error 42"));
  gpr_log(GPR_DEBUG, "not shown at info");
  EXPECT_THAT(out.str(), Not(HasSubstr("not shown at info")));

  // The next window says how many were dropped.
  RouteLibraryLogs("info", LibraryLogLimits{3, absl::ZeroDuration()});
  EXPECT_FALSE(bad.ParseFromString(wire));
  EXPECT_THAT(out.str(), HasSubstr("libprotobuf: 7 more lines were suppressed"));
  spdlog::set_default_logger(previous);
}

}  // namespace
}  // namespace cachecar::server
