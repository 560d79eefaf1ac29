// See fault_point.h.
#include "common/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace cachecar {

namespace {

const std::string& Armed() {
  static const std::string armed = [] {
    const char* v = std::getenv("CACHECAR_FAULT_POINT");
    return std::string(v == nullptr ? "" : v);
  }();
  return armed;
}

}  // namespace

bool FaultArmed(const char* name) { return !Armed().empty() && Armed() == name; }

void FaultPoint(const char* name) {
  if (!FaultArmed(name)) return;
  static const char kMessage[] = "cachecar: fault point reached; SIGKILL (CACHECAR_FAULT_POINT)\n";
  (void)!::write(2, kMessage, sizeof(kMessage) - 1);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace cachecar
