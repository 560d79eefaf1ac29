// See request_reader.h.
#include "http/request_reader.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cachecar::http {
namespace {

constexpr absl::string_view kEndOfHead = "\r\n\r\n";

// RFC 9110 token characters (method and header names).
bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return absl::StrContains("!#$%&'*+-.^_`|~", c);
}

bool IsToken(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// A header value may hold visible characters, spaces, tabs and obs-text;
// never other control characters.
bool IsFieldValue(absl::string_view s) {
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::string_view HttpRequest::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

RequestReader::State RequestReader::Fail(int code, std::string why) {
  state_ = State::kError;
  error_code_ = code;
  error_ = std::move(why);
  head_.clear();
  request_.body.clear();
  return state_;
}

RequestReader::State RequestReader::Feed(absl::string_view bytes) {
  if (state_ != State::kNeedMore || bytes.empty()) return state_;
  started_ = true;
  if (!in_body_) {
    // Only as much as the header limit allows; the rest may be body.
    const size_t room = limits_.max_header_bytes + kEndOfHead.size() - head_.size();
    const absl::string_view take = bytes.substr(0, std::min(room, bytes.size()));
    head_.append(take.data(), take.size());
    const size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
    const size_t end = head_.find(kEndOfHead.data(), from, kEndOfHead.size());
    if (end == std::string::npos) {
      scanned_ = head_.size();
      // Over the limit only once no blank line can start within it: a head
      // of max_header_bytes whose "\r\n\r\n" arrives in pieces is fine
      // (refusing it at max_header_bytes + 1 made the answer depend on how
      // the bytes were split; found by fuzz_http_request).
      if (head_.size() >= limits_.max_header_bytes + kEndOfHead.size()) {
        return Fail(431, absl::StrCat("the request line and headers are over ",
                                      limits_.max_header_bytes, " bytes"));
      }
      return state_;
    }
    // Bytes after the blank line belong to the body.
    const size_t used = end + kEndOfHead.size() - (head_.size() - take.size());
    head_.resize(end);
    bytes.remove_prefix(used);
    if (ParseHead() != State::kNeedMore) return state_;
    in_body_ = true;
    head_.clear();
    head_.shrink_to_fit();
  }
  const size_t want = body_length_ - request_.body.size();
  request_.body.append(bytes.data(), std::min(want, bytes.size()));
  if (request_.body.size() == body_length_) state_ = State::kDone;
  return state_;
}

RequestReader::State RequestReader::ParseHead() {
  const absl::string_view head(head_);
  const size_t first_end = head.find("\r\n");
  const absl::string_view line = head.substr(0, first_end);
  // method SP request-target SP HTTP-version, single spaces.
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == absl::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == absl::string_view::npos || line.find(' ', sp2 + 1) != absl::string_view::npos) {
    return Fail(400, "not an HTTP request line (METHOD /path HTTP/1.1)");
  }
  const absl::string_view method = line.substr(0, sp1);
  const absl::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const absl::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method) || target.empty() || target[0] != '/' || !IsFieldValue(target) ||
      absl::StrContains(target, '\t')) {
    return Fail(400, "not an HTTP request line (METHOD /path HTTP/1.1)");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Fail(version.substr(0, 5) == "HTTP/" ? 505 : 400,
                "only HTTP/1.1 (and 1.0) requests are served");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.path = std::string(target.substr(0, target.find('?')));

  bool seen_length = false;
  bool seen_encoding = false;
  absl::string_view rest =
      first_end == absl::string_view::npos ? absl::string_view() : head.substr(first_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const absl::string_view header = rest.substr(0, eol);
    rest = eol == absl::string_view::npos ? absl::string_view() : rest.substr(eol + 2);
    if (ParseHeaderLine(header, seen_length, seen_encoding) != State::kNeedMore) return state_;
  }
  if (seen_encoding) {
    if (seen_length) {
      return Fail(400, "both Transfer-Encoding and Content-Length: send one Content-Length");
    }
    return Fail(411, "chunked bodies are not supported; send Content-Length");
  }
  if (!seen_length && (request_.method == "POST" || request_.method == "PUT")) {
    return Fail(411, "a POST needs a Content-Length");
  }
  if (body_length_ > limits_.max_body_bytes) {
    return Fail(413, absl::StrCat("body over ", limits_.max_body_bytes, " bytes"));
  }
  if (body_length_ == 0) state_ = State::kDone;
  return state_;
}

RequestReader::State RequestReader::ParseHeaderLine(absl::string_view line, bool& seen_length,
                                                    bool& seen_encoding) {
  if (request_.headers.size() >= limits_.max_headers) {
    return Fail(431, absl::StrCat("more than ", limits_.max_headers, " headers"));
  }
  if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
    return Fail(400, "folded header lines are not accepted");
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
    return Fail(400, "a header line is not \"Name: value\"");
  }
  const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (!IsFieldValue(value))
    return Fail(400, absl::StrCat("header ", name, " has control characters"));
  if (name == "content-length") {
    if (seen_length) return Fail(400, "Content-Length is given twice");
    seen_length = true;
    const bool digits =
        !value.empty() && value.size() <= 18 &&
        std::all_of(value.begin(), value.end(), [](char c) { return absl::ascii_isdigit(c); });
    uint64_t length = 0;
    if (!digits || !absl::SimpleAtoi(value, &length)) {
      return Fail(400, "Content-Length is not a number of bytes");
    }
    if (length > limits_.max_body_bytes) {
      return Fail(413, absl::StrCat("body over ", limits_.max_body_bytes, " bytes"));
    }
    body_length_ = static_cast<size_t>(length);
  } else if (name == "transfer-encoding") {
    seen_encoding = true;
  }
  request_.headers.emplace_back(name, std::string(value));
  return state_;
}

absl::string_view ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

}  // namespace cachecar::http
