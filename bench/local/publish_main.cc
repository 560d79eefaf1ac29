// cachecar_local_publish: publishes a cache file the way cachecar does
// (cache::Storage + one cache::Engine, no server, no store) with --keys
// keys key:%012d of --value-bytes bytes in namespace "default", serving and
// always fresh, then waits until killed. For measuring the local reader on
// its own (cachecar_local_bench hits --path=..., perf, callgrind) without a
// cachecar process, a store and a preload: bench/run.py uses the real
// sidecar; this is for profiling and A/B runs of two reader builds.
//
//   cachecar_local_publish --path=/dev/shm/x/cache [--keys=1000] [--value-bytes=100]
//       [--shards=16] [--max-bytes=67108864]
//
// Single-threaded; prints "ready" on stdout once the keys are in.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "cache/engine.h"
#include "cache/storage.h"

namespace {

bool Flag(const char* arg, const char* name, std::string* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  long long keys = 1000, value_bytes = 100, shards = 16, max_bytes = 64 << 20;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "--path", &v)) {
      path = v;
    } else if (Flag(argv[i], "--keys", &v)) {
      keys = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--value-bytes", &v)) {
      value_bytes = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--shards", &v)) {
      shards = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--max-bytes", &v)) {
      max_bytes = std::atoll(v.c_str());
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (path.empty() || keys < 1 || value_bytes < 0 || shards < 1) return 2;
  using namespace cachecar::cache;
  const std::vector<NamespacePlan> plans = {
      {"default", static_cast<size_t>(max_bytes), static_cast<size_t>(shards)}};
  auto storage = Storage::CreateFile(plans, {path, 1024, absl::Milliseconds(1)});
  if (!storage.ok()) {
    std::fprintf(stderr, "%s\n", std::string(storage.status().message()).c_str());
    return 1;
  }
  EngineOptions options;
  options.max_bytes = plans[0].max_bytes;
  options.shards = plans[0].shards;
  options.region = (*storage)->region(0);
  auto engine = std::make_unique<Engine>(options);
  const std::string value(static_cast<size_t>(value_bytes), 'v');
  for (long long i = 0; i < keys; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "key:%012lld", i);
    engine->Apply(key, static_cast<uint64_t>(i + 1), ChangeKind::kValue, value);
  }
  (*storage)->SetTrustedUntil(absl::InfiniteFuture());
  (*storage)->SetServing();
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  std::printf("ready\n");
  std::fflush(stdout);
  while (!g_stop) pause();
  engine.reset();
  storage->reset();
  return 0;
}
