// See unary_call.h.
#include "server/unary_call.h"

#include <chrono>
#include <utility>

#include "absl/time/clock.h"
#include "server/deadline.h"
#include "server/raw_message.h"

namespace cachecar::server {

void UnaryCall::Listen(const Method& method, grpc::ServerCompletionQueue* cq,
                       metrics::Metrics* metrics, CallCounter& counter) {
  auto* call = new UnaryCall(method, cq, metrics, counter);
  method.request(&call->ctx_, &call->request_, &call->responder_, cq, call);
}

UnaryCall::UnaryCall(const Method& method, grpc::ServerCompletionQueue* cq,
                     metrics::Metrics* metrics, CallCounter& counter)
    : method_(method), cq_(cq), metrics_(metrics), counter_(counter), responder_(&ctx_) {
  counter_.Add();
}

UnaryCall::~UnaryCall() { counter_.Remove(); }

void UnaryCall::Proceed(bool ok) {
  if (answered_ || !ok) {  // the answer went out, or the server is shutting down
    delete this;
    return;
  }
  answered_ = true;
  started_ = absl::Now();
  Listen(method_, cq_, metrics_, counter_);
  method_.handle(this);
}

absl::Time UnaryCall::deadline() const {
  return DeadlineFromGrpc(ctx_.raw_deadline());  // not deadline(): it overflows, see deadline.h
}

bool UnaryCall::Parse(google::protobuf::Message* request) {
  if (ParseMessage(request_, request)) return true;
  Fail(UnparseableRequest(*request));
  return false;
}

void UnaryCall::Observe(grpc::StatusCode code) {
  if (metrics_ != nullptr) {
    metrics_->ObserveRequest(method_.metrics_method, code, absl::Now() - started_);
  }
}

void UnaryCall::Reply(const grpc::ByteBuffer& response) {
  Observe(grpc::StatusCode::OK);
  responder_.Finish(response, grpc::Status::OK, this);
}

void UnaryCall::Reply(const google::protobuf::Message& response) {
  Reply(SerializeMessage(response));
}

void UnaryCall::Fail(const grpc::Status& status) {
  if (status.ok()) return Reply(grpc::ByteBuffer(nullptr, 0));  // an empty message
  Observe(status.error_code());
  responder_.FinishWithError(status, this);
}

}  // namespace cachecar::server
