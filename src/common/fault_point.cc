// See fault_point.h.
#include "common/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace cachecar {

void FaultPoint(const char* name) {
  static const std::string armed = [] {
    const char* v = std::getenv("CACHECAR_FAULT_POINT");
    return std::string(v == nullptr ? "" : v);
  }();
  if (armed.empty() || armed != name) return;
  static const char kMessage[] = "cachecar: fault point reached; SIGKILL (CACHECAR_FAULT_POINT)\n";
  (void)!::write(2, kMessage, sizeof(kMessage) - 1);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace cachecar
