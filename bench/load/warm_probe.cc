// cachecar_warm_probe: the client of bench/warmstart.py. Measures a
// replica's hit ratio over time while it starts: --threads blocking Get
// loops on keys drawn uniformly from --keys keys (the working set), and one
// JSON line per --interval: {"t": seconds since the probe started, "calls",
// "hits" (answered from the cache), "errors"}. Until the replica first
// answers (it may not be listening yet) the intervals show no calls.
//
// --prewarm first reads every key once with BatchGets of 500 (so the
// replica caches the whole working set) and prints
// {"prewarmed": N, "from_cache": H}.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/v1/cache.grpc.pb.h"

namespace {

using cachecar::v1::Cache;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string key_prefix = "key:";
  int64_t keys = 100000;
  int threads = 4;
  double seconds = 10;
  double interval = 0.5;
  bool prewarm = false;
};

std::string KeyName(const Options& o, int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012lld", static_cast<long long>(i));
  return o.key_prefix + buf;
}

bool Flag(const char* arg, const char* name, std::string* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *out = arg + n + 1;
  return true;
}

int Prewarm(const Options& o, Cache::Stub& stub) {
  int64_t from_cache = 0;
  for (int64_t i = 0; i < o.keys; i += 500) {
    cachecar::v1::BatchGetRequest req;
    for (int64_t k = i; k < std::min(o.keys, i + 500); ++k) req.add_keys(KeyName(o, k));
    cachecar::v1::BatchGetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status s = stub.BatchGet(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "prewarm: BatchGet: %s\n", s.error_message().c_str());
      return 1;
    }
    for (const auto& e : resp.entries()) {
      if (e.source() == cachecar::v1::SOURCE_CACHE) ++from_cache;
    }
  }
  std::printf("{\"prewarmed\": %lld, \"from_cache\": %lld}\n", static_cast<long long>(o.keys),
              static_cast<long long>(from_cache));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string v;
    if (Flag(argv[i], "--target", &v)) {
      o.target = v;
    } else if (Flag(argv[i], "--key-prefix", &v)) {
      o.key_prefix = v;
    } else if (Flag(argv[i], "--keys", &v)) {
      o.keys = std::atoll(v.c_str());
    } else if (Flag(argv[i], "--threads", &v)) {
      o.threads = std::atoi(v.c_str());
    } else if (Flag(argv[i], "--seconds", &v)) {
      o.seconds = std::atof(v.c_str());
    } else if (Flag(argv[i], "--interval", &v)) {
      o.interval = std::atof(v.c_str());
    } else if (std::strcmp(argv[i], "--prewarm") == 0) {
      o.prewarm = true;
    } else {
      std::fprintf(stderr,
                   "usage: cachecar_warm_probe [--target=ADDR] [--keys=N] [--key-prefix=P] "
                   "[--threads=N] [--seconds=S] [--interval=S] [--prewarm]\n");
      return 2;
    }
  }
  const Clock::time_point begin = Clock::now();
  // A replica started with the probe is not listening yet: connect with a
  // fresh channel every 100 ms until it answers (gRPC's own reconnects back
  // off for seconds), so the time to its first answer is part of what is
  // measured: the intervals before it show no calls.
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Cache::Stub> stub;
  while (true) {
    channel = grpc::CreateChannel(o.target, grpc::InsecureChannelCredentials());
    if (channel->WaitForConnected(std::chrono::system_clock::now() +
                                  std::chrono::milliseconds(100))) {
      break;
    }
    if (Clock::now() - begin > std::chrono::duration<double>(o.seconds)) {
      std::fprintf(stderr, "warm_probe: %s did not answer within %g s\n", o.target.c_str(),
                   o.seconds);
      return 1;
    }
  }
  stub = Cache::NewStub(channel);
  if (o.prewarm) return Prewarm(o, *stub);

  std::atomic<int64_t> calls{0}, hits{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(1234 + t);
      std::uniform_int_distribution<int64_t> pick(0, o.keys - 1);
      while (!stop.load(std::memory_order_relaxed)) {
        cachecar::v1::GetRequest req;
        req.set_key(KeyName(o, pick(rng)));
        cachecar::v1::GetResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        const grpc::Status s = stub->Get(&ctx, req, &resp);
        calls.fetch_add(1, std::memory_order_relaxed);
        if (!s.ok()) {
          if (errors.fetch_add(1, std::memory_order_relaxed) % 1000 == 0) {
            std::fprintf(stderr, "warm_probe: Get: %d %s\n", static_cast<int>(s.error_code()),
                         s.error_message().c_str());
          }
          // Not listening yet: do not spin.
          if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        } else if (resp.source() == cachecar::v1::SOURCE_CACHE) {
          hits.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  int64_t last_calls = 0, last_hits = 0, last_errors = 0;
  for (int step = 1; step * o.interval <= o.seconds + 1e-9; ++step) {
    std::this_thread::sleep_until(begin + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(step * o.interval)));
    const int64_t c = calls.load(), h = hits.load(), e = errors.load();
    std::printf("{\"t\": %.3f, \"calls\": %lld, \"hits\": %lld, \"errors\": %lld}\n",
                step * o.interval, static_cast<long long>(c - last_calls),
                static_cast<long long>(h - last_hits), static_cast<long long>(e - last_errors));
    std::fflush(stdout);
    last_calls = c;
    last_hits = h;
    last_errors = e;
  }
  stop = true;
  for (auto& w : workers) w.join();
  return 0;
}
