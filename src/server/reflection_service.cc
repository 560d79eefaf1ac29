// See reflection_service.h.
#include "server/reflection_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "descriptor_set.h"

namespace cachecar::server {

using grpc::reflection::v1alpha::FileDescriptorResponse;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

// One reflection stream: read a request, write its answer, repeat.
class ReflectionService::Stream final
    : public grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse> {
 public:
  explicit Stream(const ReflectionService& service) : service_(service) { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the client is done
    response_ = service_.Answer(request_);
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  const ReflectionService& service_;
  ServerReflectionRequest request_;
  ServerReflectionResponse response_;
};

absl::StatusOr<std::unique_ptr<ReflectionService>> ReflectionService::Create() {
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromArray(proto::kDescriptorSet, static_cast<int>(proto::kDescriptorSetSize))) {
    return absl::InternalError("embedded descriptor set does not parse");
  }
  auto service = std::unique_ptr<ReflectionService>(new ReflectionService());
  // protoc --include_imports writes files in dependency order.
  for (const google::protobuf::FileDescriptorProto& file : set.file()) {
    const google::protobuf::FileDescriptor* built = service->pool_.BuildFile(file);
    if (built == nullptr) {
      return absl::InternalError(absl::StrCat("cannot build descriptor ", file.name()));
    }
    service->serialized_by_file_[file.name()] = file.SerializeAsString();
    for (int i = 0; i < built->service_count(); ++i) {
      service->services_.push_back(built->service(i)->full_name());
    }
  }
  std::sort(service->services_.begin(), service->services_.end());
  return service;
}

grpc::ServerBidiReactor<ServerReflectionRequest, ServerReflectionResponse>*
ReflectionService::ServerReflectionInfo(grpc::CallbackServerContext* ctx) {
  return new Stream(*this);
}

void ReflectionService::AddFileWithDependencies(const std::string& file,
                                                std::vector<std::string>* seen,
                                                FileDescriptorResponse* out) const {
  if (std::find(seen->begin(), seen->end(), file) != seen->end()) return;
  seen->push_back(file);
  out->add_file_descriptor_proto(serialized_by_file_.at(file));
  const google::protobuf::FileDescriptor* descriptor = pool_.FindFileByName(file);
  for (int i = 0; i < descriptor->dependency_count(); ++i) {
    AddFileWithDependencies(descriptor->dependency(i)->name(), seen, out);
  }
}

ServerReflectionResponse ReflectionService::Answer(const ServerReflectionRequest& request) const {
  ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  auto not_found = [&response](const std::string& message) {
    response.mutable_error_response()->set_error_code(
        static_cast<int>(grpc::StatusCode::NOT_FOUND));
    response.mutable_error_response()->set_error_message(message);
  };
  std::vector<std::string> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      break;
    case ServerReflectionRequest::kFileByFilename:
      if (serialized_by_file_.count(request.file_by_filename()) == 0) {
        not_found("no such file: " + request.file_by_filename());
      } else {
        AddFileWithDependencies(request.file_by_filename(), &seen,
                                response.mutable_file_descriptor_response());
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol: {
      const google::protobuf::FileDescriptor* file =
          pool_.FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr) {
        not_found("no such symbol: " + request.file_containing_symbol());
      } else {
        AddFileWithDependencies(file->name(), &seen, response.mutable_file_descriptor_response());
      }
      break;
    }
    case ServerReflectionRequest::kFileContainingExtension:
      not_found("cachecar's protos declare no extensions");
      break;
    case ServerReflectionRequest::kAllExtensionNumbersOfType:
      if (pool_.FindMessageTypeByName(request.all_extension_numbers_of_type()) == nullptr) {
        not_found("no such type: " + request.all_extension_numbers_of_type());
      } else {
        response.mutable_all_extension_numbers_response()->set_base_type_name(
            request.all_extension_numbers_of_type());
      }
      break;
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      response.mutable_error_response()->set_error_code(
          static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      response.mutable_error_response()->set_error_message("empty reflection request");
      break;
  }
  return response;
}

}  // namespace cachecar::server
