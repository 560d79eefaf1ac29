// See reflection_service.h.
#include "server/reflection_service.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "descriptor_set.h"
#include "server/raw_message.h"

namespace cachecar::server {

using grpc::reflection::v1alpha::FileDescriptorResponse;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

// One reflection stream: read a request, write its answer, repeat; the
// client's half-close ends it with OK. gRPC holds the done notification and
// one read, write or Finish at a time, all completed on the stream's queue;
// the stream deletes itself once the done notification and the Finish are
// back.
class ReflectionService::Stream final {
 public:
  static void Listen(ReflectionService& service, grpc::ServerCompletionQueue* cq,
                     metrics::Metrics* metrics, CallCounter& counter) {
    auto* s = new Stream(service, cq, metrics, counter);
    s->ctx_.AsyncNotifyWhenDone(&s->done_tag_);
    service.raw_.RequestServerReflectionInfo(&s->ctx_, &s->stream_, cq, cq, &s->request_tag_);
  }

 private:
  Stream(ReflectionService& service, grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
         CallCounter& counter)
      : service_(service), cq_(cq), metrics_(metrics), counter_(counter), stream_(&ctx_) {
    counter_.Add();
  }
  ~Stream() { counter_.Remove(); }

  void OnRequest(bool ok) {
    if (!ok) {  // shutting down before a client came: no other tag will come back
      delete this;
      return;
    }
    Listen(service_, cq_, metrics_, counter_);
    stream_.Read(&in_, &read_tag_);
  }
  void OnRead(bool ok) {
    if (!ok) return Finish(grpc::Status::OK);  // the client is done
    ServerReflectionRequest request;
    if (!ParseMessage(in_, &request)) return Finish(UnparseableRequest(request));
    out_ = SerializeMessage(service_.Answer(request));
    stream_.Write(out_, &write_tag_);
  }
  void OnWritten(bool ok) {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    stream_.Read(&in_, &read_tag_);
  }
  void Finish(const grpc::Status& status) {
    code_ = status.error_code();
    stream_.Finish(status, &finish_tag_);
  }
  void OnFinished(bool /*ok*/) {
    finish_done_ = true;
    MaybeRelease();
  }
  void OnDone(bool /*ok*/) {
    done_ = true;
    MaybeRelease();
  }
  void MaybeRelease() {
    if (!done_ || !finish_done_) return;
    if (metrics_ != nullptr) {
      metrics_->ObserveRequest(
          metrics::Metrics::MethodIndex("/grpc.reflection.v1alpha.ServerReflection/"), code_,
          absl::ZeroDuration());
    }
    delete this;
  }

  ReflectionService& service_;
  grpc::ServerCompletionQueue* const cq_;
  metrics::Metrics* const metrics_;
  CallCounter& counter_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  EventTag<Stream, &Stream::OnRequest> request_tag_{this};
  EventTag<Stream, &Stream::OnRead> read_tag_{this};
  EventTag<Stream, &Stream::OnWritten> write_tag_{this};
  EventTag<Stream, &Stream::OnFinished> finish_tag_{this};
  EventTag<Stream, &Stream::OnDone> done_tag_{this};
  bool finish_done_ = false;
  bool done_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
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

void ReflectionService::Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                               CallCounter& counter) {
  Stream::Listen(*this, cq, metrics, counter);
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
