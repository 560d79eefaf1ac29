// A consumer of the installed cachecar_client package: Put, Get, a stale
// compare-and-set and a Watch event against the cachecar at argv[1], and,
// with argv[2] (its local_read_path), a Get answered from the published
// cache; prints "ok"/"FAIL" lines and exits 1 on any failure.
#include <cachecar/client/client.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::cerr << "usage: consumer HOST:PORT [LOCAL_READ_PATH]\n";
    return 2;
  }
  cachecar::client::Options options;
  options.target = argv[1];
  cachecar::client::Client cache(options);
  int failed = 0;
  auto check = [&failed](bool good, const std::string& what, const std::string& detail) {
    std::cout << (good ? "ok   - " : "FAIL - ") << what << (good ? "" : ": " + detail) << "\n";
    failed += good ? 0 : 1;
  };
  auto watch = cache.Watch("", "consumer:");
  check(watch.ok(), "Watch opens", watch.status().ToString());
  auto put = cache.Put("", "consumer:k", "from an installed package");
  check(put.ok() && put->version > 0, "Put returns a version", put.status().ToString());
  auto got = cache.Get("", "consumer:k");
  check(got.ok() && got->found && got->value == "from an installed package" &&
            got->version == put->version,
        "Get returns the Put's value and version", got.status().ToString());
  cachecar::client::PutOptions stale;
  stale.if_version = put->version + 1000;
  auto cas = cache.Put("", "consumer:k", "no", stale);
  check(!cas.ok() && cas.status().code() == grpc::StatusCode::ABORTED &&
            !cas.status().outcome_unknown(),
        "a stale if_version is ABORTED", cas.status().ToString());
  if (watch.ok()) {
    cachecar::client::WatchEvent e;
    bool next = (*watch)->Next(&e);
    check(next && e.key == "consumer:k" && e.op == cachecar::client::WatchOp::kUpsert &&
              e.version == put->version,
          "Watch shows the Put", (*watch)->status().ToString());
  }
  int checks = 5;
  if (argc == 3) {
    cachecar::client::Options local_options = options;
    local_options.local_read_path = argv[2];
    cachecar::client::Client local(local_options);
    auto hit = local.Get("", "consumer:k");
    check(hit.ok() && hit->found && hit->value == "from an installed package" &&
              hit->version == put->version && hit->source == cachecar::client::Source::kLocal &&
              hit->local == cachecar::client::LocalResult::kHit,
          "Get with local_read_path is a local hit",
          hit.ok() ? cachecar::client::LocalResultName(hit->local) : hit.status().ToString());
    auto strong_options = cachecar::client::ReadOptions();
    strong_options.consistency = cachecar::client::Consistency::kStrong;
    auto strong = local.Get("", "consumer:k", strong_options);
    check(strong.ok() && strong->found && strong->source != cachecar::client::Source::kLocal &&
              strong->local == cachecar::client::LocalResult::kStrong,
          "a STRONG Get falls back to gRPC", strong.status().ToString());
    checks += 2;
  }
  std::cout << (checks - failed) << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
