// The process's open-file limit: raised from its soft value to the hard one
// at start, so descriptors run out as late as the system allows (every
// client connection is one; at a 256 soft limit, 300 idle connections to
// the probe port alone exhausted them, issue #17).
//
// Thread-safety: call once at start-up, before other threads open files.
#ifndef CACHECAR_COMMON_FD_LIMIT_H_
#define CACHECAR_COMMON_FD_LIMIT_H_

#include <cstdint>

namespace cachecar {

struct FdLimit {
  uint64_t before = 0;  // soft limit found
  uint64_t now = 0;     // soft limit after raising it
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (capped at
// /proc/sys/fs/nr_open when the hard limit is unlimited). Leaves it as it
// was if that fails; `now` says what holds.
FdLimit RaiseFdLimit();

}  // namespace cachecar

#endif  // CACHECAR_COMMON_FD_LIMIT_H_
