// cachecar_floor: the "gRPC floor" of bench/run.sh: a trivial cachecar.v1.Cache
// server that answers every Get with the same 100-byte value and does no
// other work, so the harness can show what gRPC itself costs per call in
// each serving model, in the same run as cachecar.
//
//   --model=async     (cachecar's model) completion queues, one polling
//                     thread each (--threads), the request read as raw bytes
//                     and parsed by us, the answer serialized by us
//   --model=callback  the callback API (cachecar's model before #13)
//   --model=sync      the synchronous server, gRPC's default thread pool
//   --extra=callback  also register a callback-API service (health) on the
//   --extra=sync      same server, or a sync one: what registering
//                     health/reflection that way does to the model's cost
//
// Prints "listening" once every --listen address is bound; SIGTERM stops it.
// Thread-safety: the answer is built once; handlers only read it.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/v1/cache.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

using cachecar::v1::Cache;
using cachecar::v1::GetRequest;
using cachecar::v1::GetResponse;

GetResponse Answer() {
  GetResponse r;
  r.set_found(true);
  r.set_value(std::string(100, 'v'));
  r.set_version(1);
  r.set_source(cachecar::v1::SOURCE_CACHE);
  return r;
}

// --- async: raw methods on our own completion queues ------------------------

using RawCache = Cache::WithRawMethod_Get<Cache::WithRawMethod_BatchGet<
    Cache::WithRawMethod_Put<Cache::WithRawMethod_Delete<Cache::WithRawMethod_Invalidate<
        Cache::WithRawMethod_Stats<Cache::WithRawMethod_Watch<Cache::Service>>>>>>>;

class AsyncGet {
 public:
  AsyncGet(RawCache& service, grpc::ServerCompletionQueue& cq, const GetResponse& answer)
      : service_(service), cq_(cq), answer_(answer), responder_(&ctx_) {
    service_.RequestGet(&ctx_, &request_, &responder_, &cq_, &cq_, this);
  }
  void Proceed(bool ok) {
    if (!ok || answered_) {
      delete this;
      return;
    }
    new AsyncGet(service_, cq_, answer_);
    answered_ = true;
    grpc::Slice slice;
    GetRequest request;
    if (!request_.DumpToSingleSlice(&slice).ok() ||
        !request.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) {
      responder_.FinishWithError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"),
                                 this);
      return;
    }
    grpc::ByteBuffer out;
    bool own = false;
    grpc::SerializationTraits<GetResponse>::Serialize(answer_, &out, &own).IgnoreError();
    responder_.Finish(out, grpc::Status::OK, this);
  }

 private:
  RawCache& service_;
  grpc::ServerCompletionQueue& cq_;
  const GetResponse& answer_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  bool answered_ = false;
};

// --- callback and sync ---------------------------------------------------------

class CallbackCache final : public Cache::CallbackService {
 public:
  explicit CallbackCache(const GetResponse& answer) : answer_(answer) {}
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const GetRequest*,
                                GetResponse* response) override {
    *response = answer_;
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const GetResponse& answer_;
};

class SyncCache final : public Cache::Service {
 public:
  explicit SyncCache(const GetResponse& answer) : answer_(answer) {}
  grpc::Status Get(grpc::ServerContext*, const GetRequest*, GetResponse* response) override {
    *response = answer_;
    return grpc::Status::OK;
  }

 private:
  const GetResponse& answer_;
};

class CallbackHealth final : public grpc::health::v1::Health::CallbackService {};
class SyncHealth final : public grpc::health::v1::Health::Service {};

int Usage() {
  std::fprintf(
      stderr,
      "usage: cachecar_floor --listen=ADDR [--listen=ADDR...] [--model=async|callback|sync]"
      " [--threads=N] [--extra=none|callback|sync]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> listen;
  std::string model = "async", extra = "none";
  int threads = 1;
  std::string probe;  // a second server (health only) with its own polling thread
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&a](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 && a.size() > n && a[n] == '=' ? a.c_str() + n + 1
                                                                       : nullptr;
    };
    if (const char* v = value("--listen")) {
      listen.push_back(v);
    } else if (const char* v = value("--model")) {
      model = v;
    } else if (const char* v = value("--threads")) {
      threads = std::max(1, std::atoi(v));
    } else if (const char* v = value("--probe")) {
      probe = v;
    } else if (const char* v = value("--extra")) {
      extra = v;
    } else {
      return Usage();
    }
  }
  if (listen.empty() || (model != "async" && model != "callback" && model != "sync")) {
    return Usage();
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const GetResponse answer = Answer();
  grpc::ServerBuilder builder;
  for (const std::string& address : listen) {
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  }
  RawCache async_service;
  CallbackCache callback_service(answer);
  SyncCache sync_service(answer);
  CallbackHealth callback_health;
  SyncHealth sync_health;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (model == "async") {
    builder.RegisterService(&async_service);
    for (int i = 0; i < threads; ++i) cqs.push_back(builder.AddCompletionQueue());
  } else if (model == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&sync_service);
  }
  if (extra == "callback") builder.RegisterService(&callback_health);
  if (extra == "sync") builder.RegisterService(&sync_health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "cachecar_floor: cannot listen\n");
    return 1;
  }
  std::vector<std::thread> pollers;
  for (auto& cq : cqs) {
    new AsyncGet(async_service, *cq, answer);
    pollers.emplace_back([&cq, n = pollers.size()] {
      // Named as cachecar's polling threads, so the harness can count both alike.
      pthread_setname_np(pthread_self(), ("grpc-poll-" + std::to_string(n)).c_str());
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) static_cast<AsyncGet*>(tag)->Proceed(ok);
    });
  }
  grpc::health::v1::Health::AsyncService probe_health;
  std::unique_ptr<grpc::Server> probe_server;
  std::unique_ptr<grpc::ServerCompletionQueue> probe_cq;
  if (!probe.empty()) {
    grpc::ServerBuilder probe_builder;
    probe_builder.AddListeningPort(probe, grpc::InsecureServerCredentials());
    probe_builder.RegisterService(&probe_health);
    probe_cq = probe_builder.AddCompletionQueue();
    probe_server = probe_builder.BuildAndStart();
    pollers.emplace_back([&probe_cq] {
      void* tag;
      bool ok;
      while (probe_cq->Next(&tag, &ok)) {
      }
    });
  }
  std::printf("listening\n");
  std::fflush(stdout);
  int signal = 0;
  while (sigwait(&stop, &signal) != 0) {
  }
  server->Shutdown(std::chrono::system_clock::now());
  if (probe_server) probe_server->Shutdown(std::chrono::system_clock::now());
  for (auto& cq : cqs) cq->Shutdown();
  if (probe_cq) probe_cq->Shutdown();
  for (auto& t : pollers) t.join();
  return 0;
}
