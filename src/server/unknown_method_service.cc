// See unknown_method_service.h.
#include "server/unknown_method_service.h"

#include "absl/strings/str_cat.h"

namespace cachecar::server {

// One call of an unknown method: matched, then finished unread.
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor): final, deleted as itself
class UnknownMethodService::Call final : public Tag {
 public:
  Call(UnknownMethodService& service, grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
       CallCounter& counter)
      : service_(service), cq_(cq), metrics_(metrics), counter_(counter), stream_(&ctx_) {
    counter_.Add();
    service_.generic_.RequestCall(&ctx_, &stream_, cq, cq, this);
  }
  ~Call() { counter_.Remove(); }

  void Proceed(bool ok) override {
    if (!ok || finished_) {  // shutting down, or the answer went out
      delete this;
      return;
    }
    new Call(service_, cq_, metrics_, counter_);
    finished_ = true;
    if (metrics_ != nullptr) {
      metrics_->ObserveRequest(metrics::kMethods.size() - 1, grpc::StatusCode::UNIMPLEMENTED,
                               absl::ZeroDuration());
    }
    stream_.Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                absl::StrCat("unknown method ", ctx_.method().substr(0, 200), ": ",
                                             service_.what_is_served_)),
                   this);
  }

 private:
  UnknownMethodService& service_;
  grpc::ServerCompletionQueue* const cq_;
  metrics::Metrics* const metrics_;
  CallCounter& counter_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  bool finished_ = false;
};

void UnknownMethodService::Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                                  CallCounter& counter) {
  new Call(*this, cq, metrics, counter);
}

}  // namespace cachecar::server
