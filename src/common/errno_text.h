// ErrnoText: what an errno value means, as strerror says it, but safe to call
// from any thread (strerror may return a buffer shared between threads;
// this uses the GNU strerror_r with a buffer of the caller's).
//
// Thread-safety: safe from any thread.
#ifndef CACHECAR_COMMON_ERRNO_TEXT_H_
#define CACHECAR_COMMON_ERRNO_TEXT_H_

#include <string.h>

#include <string>

namespace cachecar {

inline std::string ErrnoText(int error) {
  char buffer[128];
  // GNU strerror_r: returns the text, in `buffer` or a static string.
  return strerror_r(error, buffer, sizeof(buffer));
}

}  // namespace cachecar

#endif  // CACHECAR_COMMON_ERRNO_TEXT_H_
