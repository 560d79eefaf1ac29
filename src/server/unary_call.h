// UnaryCall: one call of a raw unary method on cachecar's completion-queue
// server, from "gRPC hands us the request" to "the answer is sent".
//
// A Method says how to ask gRPC for the next call (the generated
// Request<Name> of a raw service) and how to handle one. Listen() puts one
// call of a method on a queue; when gRPC matches a request to it, the call
// first puts the next one up (so there is always one waiting per method and
// queue), then runs the handler on the polling thread. The handler answers
// with exactly one Reply or Fail, right away (a cache hit) or later from any
// thread (a worker that read the store). Every answer is counted in Metrics
// by method and code, with the time from the request's arrival.
//
// Thread-safety: the handler and the single Reply/Fail may run on different
// threads; nothing else touches the call meanwhile. The call deletes itself
// once gRPC has sent the answer.
#ifndef CACHECAR_SERVER_UNARY_CALL_H_
#define CACHECAR_SERVER_UNARY_CALL_H_

#include <google/protobuf/message.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <functional>

#include "absl/time/time.h"
#include "metrics/metrics.h"
#include "server/completion_tag.h"

namespace cachecar::server {

// The destructor is private on purpose: a call deletes itself when its last
// operation comes back (clang-tidy's complaint about it is the point).
class UnaryCall final : public Tag {  // NOLINT(cppcoreguidelines-virtual-class-destructor)
 public:
  using Responder = grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>;
  struct Method {
    size_t metrics_method = 0;  // index into metrics::kMethods
    std::function<void(grpc::ServerContext*, grpc::ByteBuffer*, Responder*,
                       grpc::ServerCompletionQueue*, void*)>
        request;
    std::function<void(UnaryCall*)> handle;
  };

  // One call of `method` waiting on `cq`. `method`, `metrics` (unless null)
  // and `counter` must outlive every call.
  static void Listen(const Method& method, grpc::ServerCompletionQueue* cq,
                     metrics::Metrics* metrics, CallCounter& counter);

  const grpc::ServerContext& context() const { return ctx_; }
  // The client's deadline (InfiniteFuture when it set none).
  absl::Time deadline() const;
  // Parses the request; if it does not parse, answers INVALID_ARGUMENT and
  // returns false (the call is then answered: touch it no more).
  bool Parse(google::protobuf::Message* request);

  void Reply(const grpc::ByteBuffer& response);
  void Reply(const google::protobuf::Message& response);
  void Fail(const grpc::Status& status);

  void Proceed(bool ok) override;

 private:
  UnaryCall(const Method& method, grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
            CallCounter& counter);
  ~UnaryCall();
  void Observe(grpc::StatusCode code);

  const Method& method_;
  grpc::ServerCompletionQueue* const cq_;
  metrics::Metrics* const metrics_;
  CallCounter& counter_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer request_;
  Responder responder_;
  absl::Time started_;
  bool answered_ = false;  // set when the handler starts: the next tag is the answer's
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_UNARY_CALL_H_
