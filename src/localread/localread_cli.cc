// cachecar-localread: reads keys from a published cache file from the shell
// (debugging, and the end-to-end tests). One line per key:
//   HIT <version> <value>  |  ABSENT <version>  |  <FALLBACK REASON>
// Usage: cachecar-localread PATH [--namespace=NS] [--strong] [--repeat=N] KEY...
// With --repeat, each key is read N times and only the last answer printed.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "localread/reader.h"

int main(int argc, char** argv) {
  using cachecar::localread::Reader;
  using cachecar::localread::Result;
  std::string path, ns;
  bool strong = false;
  long repeat = 1;
  std::vector<std::string> keys;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--namespace=", 0) == 0) {
      ns = std::string(a.substr(12));
    } else if (a == "--strong") {
      strong = true;
    } else if (a.rfind("--repeat=", 0) == 0) {
      repeat = std::strtol(argv[i] + 9, nullptr, 10);
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: %s PATH [--namespace=NS] [--strong] [--repeat=N] KEY...\n", argv[0]);
      return 0;
    } else if (path.empty()) {
      path = std::string(a);
    } else {
      keys.emplace_back(a);
    }
  }
  if (path.empty() || keys.empty() || repeat < 1) {
    std::fprintf(stderr, "usage: %s PATH [--namespace=NS] [--strong] [--repeat=N] KEY...\n",
                 argv[0]);
    return 2;
  }
  cachecar::localread::ReaderOptions options;
  options.path = path;
  options.report_hits = false;
  Reader reader(options);
  for (const std::string& key : keys) {
    std::string value;
    uint64_t version = 0;
    Result r = Result::kMiss;
    for (long n = 0; n < repeat; ++n) r = reader.Get(ns, key, &value, &version, strong);
    if (r == Result::kHit) {
      std::printf("HIT %llu %s\n", static_cast<unsigned long long>(version), value.c_str());
    } else if (r == Result::kAbsent) {
      std::printf("ABSENT %llu\n", static_cast<unsigned long long>(version));
    } else {
      std::printf("%s\n", cachecar::localread::ResultName(r));
    }
  }
  return 0;
}
