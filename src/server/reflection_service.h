// ReflectionService: grpc.reflection.v1alpha.ServerReflection, answering
// from the descriptor set embedded at build time, which keeps the .proto
// comments (gRPC's own reflection plugin serves the compiled-in descriptors,
// which have none). With it, `grpcurl list` and `grpcurl describe` show the
// services, messages and the documentation of every field.
//
// Thread-safety: the descriptor pool is built once in the constructor and
// only read afterwards; each stream has its own reactor.
#ifndef CACHECAR_SERVER_REFLECTION_SERVICE_H_
#define CACHECAR_SERVER_REFLECTION_SERVICE_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace cachecar::server {

class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  // Loads the embedded descriptor set; fails if it does not parse.
  static absl::StatusOr<std::unique_ptr<ReflectionService>> Create();

  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override;

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

  google::protobuf::DescriptorPool pool_;
  std::map<std::string, std::string> serialized_by_file_;  // with source info
  std::vector<std::string> services_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_REFLECTION_SERVICE_H_
