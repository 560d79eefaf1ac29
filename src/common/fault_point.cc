// See fault_point.h.
#include "common/fault_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace cachecar {
namespace {

// CACHECAR_FAULT_POINT split into its name and its period ("name/N").
struct Armed {
  std::string name;
  uint64_t every = 1;
};

const Armed& ArmedPoint() {
  static const Armed armed = [] {
    Armed a;
    const char* v = std::getenv("CACHECAR_FAULT_POINT");
    a.name = v == nullptr ? "" : v;
    const size_t slash = a.name.find('/');
    if (slash != std::string::npos) {
      const uint64_t every = std::strtoull(a.name.c_str() + slash + 1, nullptr, 10);
      a.every = every == 0 ? 1 : every;
      a.name.resize(slash);
    }
    return a;
  }();
  return armed;
}

}  // namespace

void FaultPoint(const char* name) {
  const Armed& armed = ArmedPoint();
  if (armed.name.empty() || armed.name != name) return;
  static const char kMessage[] = "cachecar: fault point reached; SIGKILL (CACHECAR_FAULT_POINT)\n";
  (void)!::write(2, kMessage, sizeof(kMessage) - 1);
  ::kill(::getpid(), SIGKILL);
}

// Armed by "name" or "name/N": fires for n = 0 whatever N is.
bool FaultArmed(const char* name) { return FaultPointFires(name, 0); }

bool FaultPointFires(const char* name, uint64_t n) {
  const Armed& armed = ArmedPoint();
  if (armed.name.empty() || armed.name != name) return false;
  return n % armed.every == 0;
}

}  // namespace cachecar
