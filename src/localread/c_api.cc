// See cachecar_localread.h.
#include <new>
#include <string_view>

#include "localread/cachecar_localread.h"
#include "localread/layout.h"
#include "localread/reader.h"

using cachecar::localread::Reader;
using cachecar::localread::ReaderOptions;
using cachecar::localread::Result;

struct cachecar_localread {
  explicit cachecar_localread(ReaderOptions options) : reader(std::move(options)) {}
  Reader reader;
};

extern "C" {

uint32_t cachecar_localread_layout_version(void) { return cachecar::localread::kLayoutVersion; }

cachecar_localread* cachecar_localread_open(const char* path, uint32_t flags) {
  if (path == nullptr) return nullptr;
  ReaderOptions options;
  options.path = path;
  options.report_hits = (flags & CACHECAR_LOCALREAD_NO_HIT_REPORTS) == 0;
  return new (std::nothrow) cachecar_localread(std::move(options));
}

void cachecar_localread_close(cachecar_localread* reader) { delete reader; }

int cachecar_localread_get(cachecar_localread* reader, const char* ns, size_t ns_len,
                           const char* key, size_t key_len, uint32_t flags, char* buf,
                           size_t capacity, size_t* value_len, uint64_t* version) {
  if (reader == nullptr || (key == nullptr && key_len != 0) || (ns == nullptr && ns_len != 0) ||
      (buf == nullptr && capacity != 0)) {
    return CACHECAR_LOCALREAD_BAD_KEY;
  }
  const Result r =
      reader->reader.GetInto(std::string_view(ns == nullptr ? "" : ns, ns_len),
                             std::string_view(key == nullptr ? "" : key, key_len), buf, capacity,
                             value_len, version, (flags & CACHECAR_LOCALREAD_STRONG_READ) != 0);
  return static_cast<int>(r);
}

int cachecar_localread_is_fallback(int code) {
  if (code < 0 || code >= cachecar::localread::kResultCount) return 1;
  return cachecar::localread::IsFallback(static_cast<Result>(code)) ? 1 : 0;
}

const char* cachecar_localread_result_name(int code) {
  if (code < 0 || code >= cachecar::localread::kResultCount) return "UNKNOWN";
  return cachecar::localread::ResultName(static_cast<Result>(code));
}

void cachecar_localread_flush_hits(cachecar_localread* reader) {
  if (reader != nullptr) reader->reader.FlushHits();
}

}  // extern "C"
