// ReflectionService: grpc.reflection.v1alpha.ServerReflection, answering
// from the descriptor set embedded at build time, which keeps the .proto
// comments (gRPC's own reflection plugin serves the compiled-in descriptors,
// which have none). With it, `grpcurl list` and `grpcurl describe` show the
// services, messages and the documentation of every field.
//
// Served on GrpcServer's completion queues like every other service
// (docs/BENCHMARKS.md, "Serving core"), the requests parsed here.
//
// Thread-safety: the descriptor pool is built once in the constructor and
// only read afterwards; each stream is its own object, whose operations
// complete one at a time on one polling thread.
#ifndef CACHECAR_SERVER_REFLECTION_SERVICE_H_
#define CACHECAR_SERVER_REFLECTION_SERVICE_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/completion_queue.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "metrics/metrics.h"
#include "server/completion_tag.h"

namespace cachecar::server {

class ReflectionService final {
 public:
  using RawService =
      grpc::reflection::v1alpha::ServerReflection::WithRawMethod_ServerReflectionInfo<
          grpc::reflection::v1alpha::ServerReflection::Service>;

  // Loads the embedded descriptor set; fails if it does not parse.
  static absl::StatusOr<std::unique_ptr<ReflectionService>> Create();

  // What the server registers, and one stream put up on `cq` (see
  // CacheGrpcService::Listen).
  grpc::Service* grpc_service() { return &raw_; }
  void Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics, CallCounter& counter);

  // Answers one request (public for tests).
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

  const std::vector<std::string>& services() const { return services_; }

 private:
  class Stream;
  ReflectionService() = default;
  // Adds `file` and, first, everything it imports, each once.
  void AddFileWithDependencies(const std::string& file, std::vector<std::string>* seen,
                               grpc::reflection::v1alpha::FileDescriptorResponse* out) const;

  RawService raw_;
  google::protobuf::DescriptorPool pool_;
  std::map<std::string, std::string> serialized_by_file_;  // with source info
  std::vector<std::string> services_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_REFLECTION_SERVICE_H_
