// ListenerCheck: proves, every `interval`, that each gRPC listener (the API
// and the probe ports) still accepts a connection and answers the HTTP/2
// preface with its SETTINGS, and reports when one stops: liveness must fail
// when the listener is dead (issue #17: after EMFILE, gRPC never accepted
// again while liveness stayed SERVING). The probe opens a connection of its
// own to the bound address (a wildcard address is probed on loopback) and
// makes no call, so no RPC metric counts it.
//
// A failed probe counts against a listener unless `busy` says its gate is
// at its connection cap (full is not dead) or the probe could not get a
// descriptor itself; `failures` in a row make it dead.
//
// Thread-safety: Start once; the report runs on the check's own thread.
// The destructor stops the check and waits for a probe in progress.
#ifndef CACHECAR_SERVER_LISTENER_CHECK_H_
#define CACHECAR_SERVER_LISTENER_CHECK_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace cachecar::server {

struct ListenerCheckOptions {
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(2);  // one probe
  int failures = 3;
};

class ListenerCheck {
 public:
  // alive=false names the listener and why; alive=true when all answer again.
  using Report = std::function<void(bool alive, const std::string& why)>;

  // `targets` as GrpcServer reports them ("127.0.0.1:50051", "[::]:50052",
  // "unix:///run/c.sock"); `busy(i)` says whether targets[i]'s gate is full.
  static std::unique_ptr<ListenerCheck> Start(std::vector<std::string> targets,
                                              std::function<bool(size_t)> busy, Report report,
                                              ListenerCheckOptions options = {});
  ~ListenerCheck();
  ListenerCheck(const ListenerCheck&) = delete;
  ListenerCheck& operator=(const ListenerCheck&) = delete;

  // One probe of `target`: OK, UNAVAILABLE saying what failed, or
  // RESOURCE_EXHAUSTED when this process had no descriptor for the probe.
  static absl::Status Probe(const std::string& target, absl::Duration timeout);

 private:
  ListenerCheck() = default;
  void Run();

  std::vector<std::string> targets_;
  std::function<bool(size_t)> busy_;
  Report report_;
  ListenerCheckOptions options_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_LISTENER_CHECK_H_
