// ReadResult: one key's answer on the read path.
#ifndef CACHECAR_SERVICE_READ_RESULT_H_
#define CACHECAR_SERVICE_READ_RESULT_H_

#include <cstdint>
#include <string>

namespace cachecar::service {

struct ReadResult {
  // kNone: a CACHE_ONLY read the cache could not answer (the store was not
  // read; found is false, and the key may well hold a value).
  enum class Source { kCache, kStore, kNone };
  bool found = false;    // the key holds a value
  std::string value;     // when found
  uint64_t version = 0;  // value's version, or the delete's when !found
  Source source = Source::kCache;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_READ_RESULT_H_
