// The request reader: what it accepts, what it refuses and with which code,
// and that bytes may arrive in any split.
#include "http/request_reader.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::http {
namespace {

using ::testing::HasSubstr;
using State = RequestReader::State;

// Feeds `text` one byte at a time (the hardest split) and whole.
State ReadAll(const std::string& text, RequestReader& out, ReaderLimits limits = {}) {
  RequestReader whole(limits);
  const State all_at_once = whole.Feed(text);
  out = RequestReader(limits);
  State s = State::kNeedMore;
  for (char c : text) s = out.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(s, all_at_once);
  EXPECT_EQ(out.error_code(), whole.error_code());
  return s;
}

TEST(RequestReaderTest, ReadsAPostWithItsBody) {
  RequestReader r;
  ASSERT_EQ(ReadAll("POST /mutate?timeout=5s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    "application/json\r\nContent-Length: 5\r\n\r\nhello",
                    r),
            State::kDone);
  EXPECT_EQ(r.request().method, "POST");
  EXPECT_EQ(r.request().path, "/mutate");
  EXPECT_EQ(r.request().target, "/mutate?timeout=5s");
  EXPECT_EQ(r.request().Header("content-type"), "application/json");
  EXPECT_EQ(r.request().body, "hello");
}

TEST(RequestReaderTest, BytesAfterTheBodyAreIgnored) {
  RequestReader r;
  EXPECT_EQ(r.Feed("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n"),
            State::kDone);
  EXPECT_EQ(r.request().body, "ab");
}

TEST(RequestReaderTest, AGetNeedsNoLength) {
  RequestReader r;
  EXPECT_EQ(ReadAll("GET /healthz HTTP/1.0\r\n\r\n", r), State::kDone);
  EXPECT_EQ(r.request().path, "/healthz");
}

TEST(RequestReaderTest, WaitsForTheWholeRequest) {
  RequestReader r;
  EXPECT_EQ(r.Feed("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"), State::kNeedMore);
  EXPECT_TRUE(r.started());
  EXPECT_EQ(r.Feed("cd"), State::kDone);
  RequestReader fresh;
  EXPECT_FALSE(fresh.started());
}

// Issue #17: a duplicate Content-Length was accepted by the webhook.
TEST(RequestReaderTest, RefusesAmbiguousLengths) {
  struct Case {
    const char* text;
    int code;
    const char* why;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 100\r\n\r\nhello", 400,
            "Content-Length is given twice"},
           {"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello", 400,
            "given twice"},
           {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400, "not a number"},
           {"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400, "not a number"},
           {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "not a number"},
           {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
            "both Transfer-Encoding and Content-Length"},
           {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "chunked"},
           {"POST / HTTP/1.1\r\n\r\n", 411, "needs a Content-Length"},
           {"POST / HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", 413, "body over 4194304"},
       }) {
    RequestReader r;
    EXPECT_EQ(ReadAll(c.text, r), State::kError) << c.text;
    EXPECT_EQ(r.error_code(), c.code) << c.text;
    EXPECT_THAT(r.error(), HasSubstr(c.why)) << c.text;
  }
}

TEST(RequestReaderTest, RefusesMalformedHeads) {
  for (const char* text :
       {"GARBAGE\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n",
        "GET nopath HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
        "\r\n\r\n"}) {
    RequestReader r;
    EXPECT_EQ(ReadAll(text, r), State::kError) << text;
    EXPECT_EQ(r.error_code(), 400) << text;
  }
  RequestReader v;
  EXPECT_EQ(ReadAll("GET / HTTP/2.0\r\n\r\n", v), State::kError);
  EXPECT_EQ(v.error_code(), 505);
}

TEST(RequestReaderTest, BoundsTheHeaders) {
  RequestReader big;
  ReaderLimits limits;
  limits.max_header_bytes = 64;
  EXPECT_EQ(ReadAll("GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n", big, limits),
            State::kError);
  EXPECT_EQ(big.error_code(), 431);
  // Without a blank line, the reader stops holding bytes at the limit.
  RequestReader endless(limits);
  for (int i = 0; i < 1000 && endless.state() == State::kNeedMore; ++i) endless.Feed("aaaaaaaa");
  EXPECT_EQ(endless.error_code(), 431);
  EXPECT_EQ(endless.buffered(), 0u);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "A: b\r\n";
  RequestReader r;
  EXPECT_EQ(ReadAll(many + "\r\n", r), State::kError);
  EXPECT_EQ(r.error_code(), 431);
}

// Found by fuzz_http_request: a head of exactly max_header_bytes was read
// whole, but refused (431) when its blank line came in pieces.
TEST(RequestReaderTest, TheAnswerDoesNotDependOnHowTheBytesAreSplit) {
  ReaderLimits limits;
  limits.max_header_bytes = 64;
  std::string head = "GET / HTTP/1.1\r\nX: ";
  head += std::string(limits.max_header_bytes - head.size(), 'a');  // exactly at the limit
  const std::string text = head + "\r\n\r\n";
  RequestReader whole(limits);
  EXPECT_EQ(whole.Feed(text), State::kDone);
  RequestReader bytewise(limits);
  for (char c : text) bytewise.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(bytewise.state(), State::kDone) << bytewise.error();
  EXPECT_EQ(bytewise.request().Header("x"), whole.request().Header("x"));
  // One byte more is over the limit, however it arrives.
  const std::string over = "GET / HTTP/1.1\r\nX: a" + head.substr(19) + "\r\n\r\n";
  RequestReader over_whole(limits);
  EXPECT_EQ(over_whole.Feed(over), State::kError);
  EXPECT_EQ(over_whole.error_code(), 431);
  RequestReader over_bytewise(limits);
  for (char c : over) over_bytewise.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(over_bytewise.error_code(), 431);
}

}  // namespace
}  // namespace cachecar::http
