// Fuzz target: the webhook's (and /metrics') HTTP request reader, fed the
// input whole and split at every chunk boundary the first byte picks; both
// must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "http/request_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 17;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  cachecar::http::ReaderLimits limits;
  limits.max_header_bytes = 1024;  // small, so limits are reached
  limits.max_body_bytes = 4096;
  cachecar::http::RequestReader whole(limits);
  whole.Feed(text);
  cachecar::http::RequestReader pieces(limits);
  for (size_t i = 0; i < text.size(); i += chunk) pieces.Feed(text.substr(i, chunk));
  if (whole.state() != pieces.state() || whole.error_code() != pieces.error_code()) std::abort();
  if (whole.state() == cachecar::http::RequestReader::State::kDone) {
    const cachecar::http::HttpRequest& a = whole.request();
    const cachecar::http::HttpRequest& b = pieces.request();
    if (a.body != b.body || a.target != b.target || a.headers != b.headers) std::abort();
    if (a.body.size() > limits.max_body_bytes) std::abort();
  }
  if (whole.buffered() > limits.max_header_bytes + limits.max_body_bytes + 4) std::abort();
  return 0;
}
