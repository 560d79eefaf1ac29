// See fd_limit.h.
#include "common/fd_limit.h"

#include <sys/resource.h>

#include <fstream>

namespace cachecar {

FdLimit RaiseFdLimit() {
  FdLimit out;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return out;
  out.before = out.now = limit.rlim_cur;
  out.hard = limit.rlim_max;
  rlim_t target = limit.rlim_max;
  if (target == RLIM_INFINITY) {
    uint64_t nr_open = 1 << 20;  // the kernel's default
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    target = nr_open;
  }
  if (target <= limit.rlim_cur) return out;
  limit.rlim_cur = target;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) out.now = target;
  return out;
}

}  // namespace cachecar
