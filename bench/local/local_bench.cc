// cachecar_local_bench: the local read path's benchmark (bench/run.py,
// section "local"; docs/LOCAL_READS.md). Modes, each printing one JSON
// object on stdout:
//   hits   reads --keys preloaded keys (key:%012d, shuffled) from the file
//          at --path on this one thread: the latency of each call (TSC
//          timestamps around it, timer cost included), then, untimed, how
//          many calls one core makes per second. Every answer must be a
//          HIT of --value-bytes bytes, else it exits 1 naming the result.
//          --client: through the C++ client library's Get (local_read_path)
//          instead of the reader alone.
//   trace  replays a Zipf(--zipf) trace of --requests reads over --keys keys
//          against cachecar at --target: with --path, each read tries the
//          mapping first and falls back to a blocking gRPC Get; without, every
//          read is a gRPC Get. Reports the hit ratio: reads answered from the
//          cache (the mapping, or gRPC's SOURCE_CACHE) over all reads.
//
// Other languages' readers (clients/) print the same `hits` JSON so that
// bench/run.py can put them in the same table (--local-reader).
#include <grpcpp/grpcpp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cachecar/client/client.h"
#include "cachecar/v1/cache.grpc.pb.h"
#include "localread/reader.h"

namespace {

using cachecar::localread::Reader;
using cachecar::localread::ReaderOptions;
using cachecar::localread::Result;

struct Options {
  std::string mode, path, target = "127.0.0.1:50051", ns = "default", key_prefix = "key:";
  bool hit_reports = true;
  bool via_client = false;  // hits: through cachecar::client::Client::Get
  int64_t keys = 1000, requests = 100000;
  double seconds = 3, zipf = 0.9;
  size_t value_bytes = 100;
  uint64_t seed = 1;
};

std::string KeyName(const Options& o, int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%012lld", static_cast<long long>(i));
  return o.key_prefix + buf;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

uint64_t Ticks() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

// Nanoseconds per tick, measured over 50 ms.
double NanosPerTick() {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t k0 = Ticks();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) {
  }
  const uint64_t k1 = Ticks();
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  return ns / static_cast<double>(k1 - k0);
}

// One local Get: the reader's, or the C++ client library's (--client: what
// an app using cachecar::client pays, fallback logic included).
class HitGetter {
 public:
  explicit HitGetter(const Options& o) : o_(o) {
    if (o.via_client) {
      cachecar::client::Options co;
      co.target = o.target;
      co.local_read_path = o.path;
      co.local_report_hits = o.hit_reports;
      client_ = std::make_unique<cachecar::client::Client>(co);
    } else {
      ReaderOptions ro;
      ro.path = o.path;
      ro.report_hits = o.hit_reports;
      reader_ = std::make_unique<Reader>(ro);
    }
  }
  Result Get(const std::string& key, std::string* value, uint64_t* version) {
    if (reader_ != nullptr) return reader_->Get(o_.ns, key, value, version);
    auto r = client_->Get(o_.ns, key);
    if (!r.ok()) return Result::kNotServing;
    *version = r->version;
    value->swap(r->value);
    return static_cast<Result>(static_cast<int>(r->local));
  }

 private:
  const Options& o_;
  std::unique_ptr<Reader> reader_;
  std::unique_ptr<cachecar::client::Client> client_;
};

int RunHits(const Options& o) {
  HitGetter reader(o);
  std::vector<std::string> keys;
  for (int64_t i = 0; i < o.keys; ++i) keys.push_back(KeyName(o, i));
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(o.seed));
  std::string value;
  uint64_t version = 0;
  // Warm up (maps the file, faults its pages in) and check every key hits.
  for (const std::string& k : keys) {
    const Result r = reader.Get(k, &value, &version);
    if (r != Result::kHit || value.size() != o.value_bytes) {
      std::fprintf(stderr, "%s: %s (value %zu bytes); preload the keys first\n", k.c_str(),
                   cachecar::localread::ResultName(r), value.size());
      return 1;
    }
  }
  const double ns_per_tick = NanosPerTick();
  // Latency: each call timed on its own.
  const size_t samples = static_cast<size_t>(std::max<double>(100000, o.seconds * 500000));
  std::vector<uint32_t> ticks(samples);
  uint64_t fallbacks = 0;
  for (size_t i = 0; i < samples; ++i) {
    const std::string& k = keys[i % keys.size()];
    const uint64_t t0 = Ticks();
    const Result r = reader.Get(k, &value, &version);
    const uint64_t t1 = Ticks();
    ticks[i] = static_cast<uint32_t>(std::min<uint64_t>(t1 - t0, UINT32_MAX));
    fallbacks += r != Result::kHit;
  }
  std::vector<uint32_t> sorted = ticks;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p / 100 * sorted.size()))] *
           ns_per_tick / 1000.0;
  };
  // Timer cost alone.
  std::vector<uint32_t> empty(10000);
  for (auto& e : empty) {
    const uint64_t t0 = Ticks();
    const uint64_t t1 = Ticks();
    e = static_cast<uint32_t>(t1 - t0);
  }
  std::sort(empty.begin(), empty.end());
  // Throughput: untimed calls for --seconds.
  const double cpu0 = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(o.seconds);
  uint64_t calls = 0;
  size_t i = 0;
  auto now = start;
  while (now < end) {
    for (int n = 0; n < 1024; ++n) {
      fallbacks += reader.Get(keys[i], &value, &version) != Result::kHit;
      if (++i == keys.size()) i = 0;
    }
    calls += 1024;
    now = std::chrono::steady_clock::now();
  }
  const double wall = std::chrono::duration<double>(now - start).count();
  const double cpu = CpuSeconds() - cpu0;
  std::printf(
      "{\"mode\":\"hits\",\"keys\":%lld,\"value_bytes\":%zu,\"calls\":%llu,\"p50_us\":%.4f,"
      "\"p90_us\":%.4f,\"p99_us\":%.4f,\"p999_us\":%.4f,\"timer_us\":%.4f,\"hits_per_second\":%.0f,"
      "\"cpu_us_per_hit\":%.4f,\"fallbacks\":%llu}\n",
      static_cast<long long>(o.keys), o.value_bytes, static_cast<unsigned long long>(calls),
      pct(50), pct(90), pct(99), pct(99.9), empty[empty.size() / 2] * ns_per_tick / 1000.0,
      calls / wall, cpu * 1e6 / static_cast<double>(calls),
      static_cast<unsigned long long>(fallbacks));
  return fallbacks == 0 ? 0 : 1;
}

// Zipf(theta) ranks 0..n-1 by inverse CDF.
class Zipf {
 public:
  Zipf(int64_t n, double theta) : cdf_(n) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), theta));
    for (double& c : cdf_) c /= sum;
  }
  int64_t operator()(std::mt19937_64& rng) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  }

 private:
  std::vector<double> cdf_;
};

int RunTrace(const Options& o) {
  auto channel = grpc::CreateChannel(o.target, grpc::InsecureChannelCredentials());
  auto stub = cachecar::v1::Cache::NewStub(channel);
  std::unique_ptr<Reader> reader;
  if (!o.path.empty()) {
    ReaderOptions ro;
    ro.path = o.path;
    ro.report_hits = o.hit_reports;
    reader = std::make_unique<Reader>(ro);
  }
  Zipf zipf(o.keys, o.zipf);
  std::mt19937_64 rng(o.seed);
  // A key's rank is scrambled into its name so hot keys spread over shards.
  std::vector<int64_t> name_of(o.keys);
  for (int64_t i = 0; i < o.keys; ++i) name_of[i] = i;
  std::shuffle(name_of.begin(), name_of.end(), std::mt19937_64(o.seed + 1));
  uint64_t local_hits = 0, grpc_cache = 0, grpc_store = 0, errors = 0;
  uint64_t fallbacks[cachecar::localread::kResultCount] = {};
  std::string value;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t n = 0; n < o.requests; ++n) {
    const std::string key = KeyName(o, name_of[zipf(rng)]);
    if (reader) {
      uint64_t version = 0;
      const Result r = reader->Get(o.ns, key, &value, &version);
      if (!cachecar::localread::IsFallback(r)) {
        ++local_hits;
        continue;
      }
      ++fallbacks[static_cast<int>(r)];
    }
    cachecar::v1::GetRequest request;
    request.set_namespace_(o.ns);
    request.set_key(key);
    cachecar::v1::GetResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const grpc::Status status = stub->Get(&context, request, &response);
    if (!status.ok()) {
      if (errors++ == 0)
        std::fprintf(stderr, "Get %s: %s\n", key.c_str(), status.error_message().c_str());
      continue;
    }
    (response.source() == cachecar::v1::SOURCE_CACHE ? grpc_cache : grpc_store)++;
  }
  if (reader) reader->FlushHits();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t answered = local_hits + grpc_cache + grpc_store;
  uint64_t other = 0;  // fallbacks for another reason than a miss
  for (int r = 0; r < cachecar::localread::kResultCount; ++r) {
    if (r != static_cast<int>(Result::kMiss)) other += fallbacks[r];
  }
  std::printf(
      "{\"mode\":\"trace\",\"local\":%s,\"keys\":%lld,\"requests\":%lld,\"zipf\":%.2f,"
      "\"local_hits\":%llu,\"grpc_cache\":%llu,\"grpc_store\":%llu,\"errors\":%llu,"
      "\"hit_ratio\":%.5f,\"fallback_miss\":%llu,\"fallback_other\":%llu,\"seconds\":%.2f}\n",
      reader ? "true" : "false", static_cast<long long>(o.keys), static_cast<long long>(o.requests),
      o.zipf, static_cast<unsigned long long>(local_hits),
      static_cast<unsigned long long>(grpc_cache), static_cast<unsigned long long>(grpc_store),
      static_cast<unsigned long long>(errors),
      answered == 0 ? 0.0 : static_cast<double>(local_hits + grpc_cache) / answered,
      static_cast<unsigned long long>(fallbacks[static_cast<int>(Result::kMiss)]),
      static_cast<unsigned long long>(other), wall);
  return errors == 0 ? 0 : 1;
}

bool Flag(const char* arg, const char* name, std::string* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: cachecar_local_bench hits|trace [--path=FILE] [--target=ADDR] "
                 "[--namespace=NS] [--key-prefix=P] [--keys=N] [--requests=N] [--seconds=S] "
                 "[--zipf=THETA] [--value-bytes=N] [--seed=N] [--no-hit-reports] [--client]\n");
    return 2;
  }
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "--path", &v)) {
      o.path = v;
    } else if (Flag(argv[i], "--target", &v)) {
      o.target = v;
    } else if (Flag(argv[i], "--namespace", &v)) {
      o.ns = v;
    } else if (Flag(argv[i], "--key-prefix", &v)) {
      o.key_prefix = v;
    } else if (Flag(argv[i], "--keys", &v)) {
      o.keys = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--requests", &v)) {
      o.requests = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--seconds", &v)) {
      o.seconds = std::atof(v.c_str());
    } else if (Flag(argv[i], "--zipf", &v)) {
      o.zipf = std::atof(v.c_str());
    } else if (Flag(argv[i], "--value-bytes", &v)) {
      o.value_bytes = std::strtoull(v.c_str(), nullptr, 10);
    } else if (std::strcmp(argv[i], "--client") == 0) {
      o.via_client = true;
    } else if (std::strcmp(argv[i], "--no-hit-reports") == 0) {
      o.hit_reports = false;
    } else if (Flag(argv[i], "--seed", &v)) {
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (o.keys < 1) return 2;
  if (o.mode == "hits") return o.path.empty() ? 2 : RunHits(o);
  if (o.mode == "trace") return RunTrace(o);
  std::fprintf(stderr, "unknown mode %s\n", o.mode.c_str());
  return 2;
}
