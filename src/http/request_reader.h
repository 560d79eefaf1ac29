// RequestReader: reads one HTTP/1.1 request from bytes as they arrive, for
// the webhook and the /metrics endpoint (http_server.h), under limits that a
// client cannot talk its way past: the header section, the number of
// headers and the body are bounded, and anything ambiguous is refused
// rather than guessed (request smuggling lives in those guesses).
//
// Refused with a status code: a malformed request line or header line, an
// obsolete folded header, control characters, a Content-Length that is not
// digits, or given twice (even with one value), or beside Transfer-Encoding
// (400); Transfer-Encoding alone, or a POST/PUT without Content-Length (411;
// we do not read chunked bodies); a body over the limit (413, as soon as the
// headers say so); a header section over the limit or too many headers
// (431); an HTTP version other than 1.0/1.1 (505).
//
// Written by hand (issue #16 asked for cpp-httplib): see http_server.h for
// why the server is our own; this reader is its parsing half, kept pure so
// that a fuzzer can drive it (tests/fuzz).
//
// Thread-safety: a RequestReader belongs to one connection and one thread.
#ifndef CACHECAR_HTTP_REQUEST_READER_H_
#define CACHECAR_HTTP_REQUEST_READER_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace cachecar::http {

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as sent: "/mutate?timeout=5s"
  std::string path;                                          // target without the query: "/mutate"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  // The first header named `name` (lower case), or "".
  absl::string_view Header(absl::string_view name) const;
};

struct ReaderLimits {
  size_t max_header_bytes = 16 << 10;  // request line and headers, CRLFs included
  size_t max_headers = 100;
  size_t max_body_bytes = 4 << 20;
};

class RequestReader {
 public:
  enum class State { kNeedMore, kDone, kError };

  explicit RequestReader(ReaderLimits limits = {}) : limits_(limits) {}

  // Takes the next bytes of the connection. Once kDone or kError, further
  // bytes are ignored (one request per connection).
  State Feed(absl::string_view bytes);

  State state() const { return state_; }
  // kDone: the request. Its body holds exactly Content-Length bytes.
  const HttpRequest& request() const { return request_; }
  HttpRequest TakeRequest() { return std::move(request_); }
  // kError: the status to answer with (400, 411, 413, 431, 505) and why.
  int error_code() const { return error_code_; }
  const std::string& error() const { return error_; }
  // Whether any byte has arrived (a connection that sent nothing gets no
  // 408 when its time is up, just a close).
  bool started() const { return started_; }
  // Bytes held now (for the server's memory budget).
  size_t buffered() const { return head_.size() + request_.body.size(); }

 private:
  State Fail(int code, std::string why);
  // Parses head_ (without the blank line); kNeedMore if a body follows.
  State ParseHead();
  State ParseHeaderLine(absl::string_view line, bool& seen_length, bool& seen_encoding);

  ReaderLimits limits_;
  State state_ = State::kNeedMore;
  bool started_ = false;
  bool in_body_ = false;
  std::string head_;    // bytes of the header section so far
  size_t scanned_ = 0;  // head_ before this offset holds no "\r\n\r\n"
  size_t body_length_ = 0;
  HttpRequest request_;
  int error_code_ = 0;
  std::string error_;
};

// The reason phrase of a status code we send ("Bad Request").
absl::string_view ReasonPhrase(int code);

}  // namespace cachecar::http

#endif  // CACHECAR_HTTP_REQUEST_READER_H_
