// UnknownMethodService: answers calls of methods no service of the server
// has with UNIMPLEMENTED and a message naming what the port does serve
// (gRPC's own answer has no message), and counts them in Metrics as
// method "other". On the completion queues like every other service.
//
// Thread-safety: `what_is_served` is fixed at construction; each call is its
// own object.
#ifndef CACHECAR_SERVER_UNKNOWN_METHOD_SERVICE_H_
#define CACHECAR_SERVER_UNKNOWN_METHOD_SERVICE_H_

#include <grpcpp/completion_queue.h>
#include <grpcpp/generic/async_generic_service.h>

#include <string>

#include "metrics/metrics.h"
#include "server/completion_tag.h"

namespace cachecar::server {

class UnknownMethodService {
 public:
  // `what_is_served` ends the message, e.g. "this port serves only ...".
  explicit UnknownMethodService(std::string what_is_served)
      : what_is_served_(std::move(what_is_served)) {}

  grpc::AsyncGenericService* grpc_service() { return &generic_; }
  void Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics, CallCounter& counter);

 private:
  class Call;  // NOLINT(cppcoreguidelines-virtual-class-destructor)
  grpc::AsyncGenericService generic_;
  const std::string what_is_served_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_UNKNOWN_METHOD_SERVICE_H_
