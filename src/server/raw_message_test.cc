// raw_message: EncodeGetResponse gives exactly the bytes of the generated
// GetResponse, and ParseMessage refuses what is not the message.
#include "server/raw_message.h"

#include "gtest/gtest.h"

namespace cachecar::server {
namespace {

std::string Bytes(const grpc::ByteBuffer& buffer) {
  grpc::Slice slice;
  EXPECT_TRUE(buffer.DumpToSingleSlice(&slice).ok());
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

TEST(RawMessageTest, EncodeGetResponseMatchesTheGeneratedSerialization) {
  struct Case {
    bool found;
    std::string value;
    uint64_t version;
    v1::Source source;
  };
  const Case cases[] = {
      {true, std::string(100, 'v'), 42, v1::SOURCE_CACHE},
      {true, "", 1, v1::SOURCE_STORE},                        // an empty value is still found
      {false, "", 0, v1::SOURCE_CACHE},                       // never written
      {false, "", uint64_t{1} << 63, v1::SOURCE_STORE},       // deleted at a large version
      {true, std::string(300, '\0'), 127, v1::SOURCE_CACHE},  // 2-byte length, binary
      {true, std::string(70000, 'x'), 128, v1::SOURCE_UNSPECIFIED},  // 3-byte length
  };
  for (const Case& c : cases) {
    v1::GetResponse want;
    want.set_found(c.found);
    want.set_value(c.value);
    want.set_version(c.version);
    want.set_source(c.source);
    const std::string got = Bytes(EncodeGetResponse(c.found, c.value, c.version, c.source));
    EXPECT_EQ(got, want.SerializeAsString()) << want.ShortDebugString().substr(0, 80);
    v1::GetResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(got));
    EXPECT_EQ(parsed.found(), c.found);
    EXPECT_EQ(parsed.value(), c.value);
    EXPECT_EQ(parsed.version(), c.version);
    EXPECT_EQ(parsed.source(), c.source);
  }
}

TEST(RawMessageTest, ParseMessageRefusesBytesThatAreNotTheMessage) {
  v1::GetRequest request;
  request.set_key("k");
  grpc::Slice good(request.SerializeAsString());
  v1::GetRequest parsed;
  EXPECT_TRUE(ParseMessage(grpc::ByteBuffer(&good, 1), &parsed));
  EXPECT_EQ(parsed.key(), "k");

  const std::string bad_wire =
      "\x12\x7f"
      "short";  // key says 127 bytes, has 5
  grpc::Slice bad(bad_wire);
  EXPECT_FALSE(ParseMessage(grpc::ByteBuffer(&bad, 1), &parsed));
  const std::string bad_utf8 = "\x12\x02\xc3\x28";  // key: invalid UTF-8
  grpc::Slice utf8(bad_utf8);
  EXPECT_FALSE(ParseMessage(grpc::ByteBuffer(&utf8, 1), &parsed));

  grpc::Status status = UnparseableRequest(parsed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("could not be parsed as cachecar.v1.GetRequest"),
            std::string::npos);
}

TEST(RawMessageTest, AnEmptyPayloadIsTheDefaultMessage) {
  v1::GetRequest parsed;
  parsed.set_key("stale");
  EXPECT_TRUE(ParseMessage(grpc::ByteBuffer(nullptr, 0), &parsed));
  EXPECT_EQ(parsed.key(), "");
}

}  // namespace
}  // namespace cachecar::server
