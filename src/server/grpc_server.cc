// See grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>
#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {
constexpr const char* kReadinessNames[] = {"", "cachecar.v1.Cache", kReadinessName};

std::vector<std::string> HealthNames() {
  std::vector<std::string> names(std::begin(kReadinessNames), std::end(kReadinessNames));
  names.push_back(kLivenessName);
  names.push_back(kStoreHealthName);
  names.push_back(kSyncHealthName);
  return names;
}

// Addresses checked and claimed, for a ConnectionGate to bind once the
// server runs.
struct Listeners {
  std::vector<ListenAddress> addresses;
};

// Runs every completion that reaches `cq` until it is shut down and drained.
void Poll(grpc::ServerCompletionQueue* cq, int index) {
  pthread_setname_np(pthread_self(), absl::StrCat("grpc-poll-", index).c_str());
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
}

// The probe server's thread: runs what has reached `cq` every kProbeTick,
// without ever waiting on it (see grpc_server.h), until `stop`; then drains
// it once it is shut down.
void Tick(grpc::ServerCompletionQueue* cq, absl::Notification* stop) {
  pthread_setname_np(pthread_self(), "grpc-probe");
  void* tag;
  bool ok;
  do {
    while (cq->AsyncNext(&tag, &ok, std::chrono::system_clock::now()) ==
           grpc::CompletionQueue::GOT_EVENT) {
      static_cast<Tag*>(tag)->Proceed(ok);
    }
  } while (!stop->WaitForNotificationWithTimeout(kProbeTick));
  while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
}

void ShutdownAndDrain(grpc::ServerCompletionQueue* cq) {
  cq->Shutdown();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
}

constexpr const char kServed[] =
    "cachecar serves cachecar.v1.Cache, grpc.health.v1.Health and "
    "grpc.reflection.v1alpha.ServerReflection";
constexpr const char kProbeServed[] =
    "this is cachecar's probe port, which serves only grpc.health.v1.Health; call the cache "
    "API on a `listen` address";

}  // namespace

// One function on purpose: the start is a sequence whose order matters
// (claim the addresses, register the services, build, bind through the
// gate, put calls up, then the probe server), each step using the builder
// and the half-made server.
absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(  // NOLINT(readability-function-size)
    const ServerOptions& options, service::CacheService& service) {
  auto server = std::unique_ptr<GrpcServer>(new GrpcServer());

  // Checks and claims each address; the gate binds it after the start.
  auto add_listeners = [&server](const std::vector<std::string>& texts,
                                 grpc::ServerBuilder& builder,
                                 Listeners& listeners) -> absl::Status {
    for (const std::string& text : texts) {
      absl::StatusOr<ListenAddress> address = ParseListenAddress(text);
      if (!address.ok()) return address.status();
      if (address->kind == ListenAddress::Kind::kUnix) {
        auto claim = UnixSocketClaim::Claim(address->path);
        if (!claim.ok()) return claim.status();
        server->unix_claims_.push_back(std::move(*claim));
      } else if (absl::Status s = PreflightTcp(*address); !s.ok()) {
        return s;
      }
      listeners.addresses.push_back(*address);
    }
    return absl::OkStatus();
  };

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  ApplyConnectionArgs(builder, options.connections);
  Listeners listeners;
  if (absl::Status s = add_listeners(options.listen, builder, listeners); !s.ok()) return s;

  server->cache_service_ = std::make_unique<CacheGrpcService>(service, options.watch_hub);
  server->watch_hub_ = options.watch_hub;
  builder.RegisterService(server->cache_service_->grpc_service());
  server->health_ = std::make_unique<HealthService>(HealthNames());
  builder.RegisterService(server->health_->grpc_service());
  auto reflection = ReflectionService::Create();
  if (!reflection.ok()) return reflection.status();
  server->reflection_ = std::move(*reflection);
  builder.RegisterService(server->reflection_->grpc_service());
  server->unknown_ = std::make_unique<UnknownMethodService>(kServed);
  builder.RegisterAsyncGenericService(server->unknown_->grpc_service());
  for (int i = 0; i < std::max(1, options.polling_threads); ++i) {
    server->cqs_.push_back(builder.AddCompletionQueue());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError("gRPC could not start its server; see the log above");
  }
  auto gate =
      ConnectionGate::Start("api", listeners.addresses, server->server_.get(), options.connections);
  if (!gate.ok()) return gate.status();
  server->gate_ = *std::move(gate);
  server->bound_ = server->gate_->bound();
  // Any uid that can reach the socket's directory may call (a pod's app
  // container rarely runs as cachecar's uid): no more open than a loopback
  // port, which every process in the network namespace reaches.
  for (const ListenAddress& a : listeners.addresses) {
    if (a.kind == ListenAddress::Kind::kUnix) chmod(a.path.c_str(), 0666);
  }
  for (size_t i = 0; i < server->cqs_.size(); ++i) {
    grpc::ServerCompletionQueue* cq = server->cqs_[i].get();
    server->cache_service_->Listen(cq, options.metrics, server->calls_);
    server->health_->Listen(cq, options.metrics, server->calls_);
    server->reflection_->Listen(cq, options.metrics, server->calls_);
    server->unknown_->Listen(cq, options.metrics, server->calls_);
    server->pollers_.emplace_back(Poll, cq, static_cast<int>(i));
  }

  if (!options.probe_listen.empty()) {
    grpc::ServerBuilder probe_builder;
    Listeners probe_listeners;
    if (absl::Status s = add_listeners(options.probe_listen, probe_builder, probe_listeners);
        !s.ok()) {
      return s;
    }
    ApplyConnectionArgs(probe_builder, options.probe_connections);
    server->probe_health_ = std::make_unique<HealthService>(HealthNames());
    probe_builder.RegisterService(server->probe_health_->grpc_service());
    server->probe_unknown_ = std::make_unique<UnknownMethodService>(kProbeServed);
    probe_builder.RegisterAsyncGenericService(server->probe_unknown_->grpc_service());
    server->probe_cqs_.push_back(probe_builder.AddCompletionQueue());
    server->probe_server_ = probe_builder.BuildAndStart();
    if (server->probe_server_ == nullptr) {
      return absl::UnavailableError("gRPC could not start the probe server; see the log above");
    }
    auto probe_gate = ConnectionGate::Start("probe", probe_listeners.addresses,
                                            server->probe_server_.get(), options.probe_connections);
    if (!probe_gate.ok()) {
      return absl::Status(probe_gate.status().code(),
                          absl::StrCat("probe_listen: ", probe_gate.status().message()));
    }
    server->probe_gate_ = *std::move(probe_gate);
    server->probe_bound_ = server->probe_gate_->bound();
    grpc::ServerCompletionQueue* cq = server->probe_cqs_[0].get();
    server->probe_health_->Listen(cq, options.metrics, server->probe_calls_);
    server->probe_unknown_->Listen(cq, options.metrics, server->probe_calls_);
    server->probe_ticker_.emplace_back(Tick, cq, &server->stop_ticking_);
  }
  server->SetLive(true);
  server->StartListenerCheck(options.listener_check_interval);
  return server;
}

void GrpcServer::StartListenerCheck(absl::Duration interval) {
  std::vector<std::string> targets = bound_;
  targets.insert(targets.end(), probe_bound_.begin(), probe_bound_.end());
  const size_t api = bound_.size();
  ListenerCheckOptions check;
  check.interval = interval;
  listener_check_ = ListenerCheck::Start(
      std::move(targets),
      [this, api](size_t i) { return i < api ? gate_->at_cap() : probe_gate_->at_cap(); },
      [this](bool alive, const std::string& why) {
        if (alive) {
          spdlog::info("{}; health liveness SERVING", why);
        } else {
          spdlog::error("{}; health liveness NOT_SERVING (the kubelet will restart the container)",
                        why);
        }
        SetLive(alive);
      },
      check);
}

void GrpcServer::SetLive(bool live) {
  for (HealthService* health : {health_.get(), probe_health_.get()}) {
    if (health != nullptr) health->SetServing(kLivenessName, live);
  }
}

void GrpcServer::SetReady(bool ready) {
  for (HealthService* health : {health_.get(), probe_health_.get()}) {
    if (health == nullptr) continue;
    for (const char* name : kReadinessNames) health->SetServing(name, ready);
  }
}

void GrpcServer::StopServer(grpc::Server* server, absl::Duration grace, CallCounter& calls,
                            std::vector<std::unique_ptr<grpc::ServerCompletionQueue>>& cqs,
                            std::vector<std::thread>& threads, absl::Notification* stop_ticking) {
  if (server != nullptr) {
    // The threads go on running completions meanwhile: calls in flight end
    // (a worker's answer, or gRPC cancelling them after `grace`) and calls
    // waiting for a client come back unmatched.
    server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    // A call a worker still holds would post to its queue: wait for it.
    calls.AwaitNone(absl::InfiniteFuture());
  }
  if (stop_ticking != nullptr && !stop_ticking->HasBeenNotified()) stop_ticking->Notify();
  if (threads.empty()) {
    for (auto& cq : cqs) ShutdownAndDrain(cq.get());  // never polled: drain it here
    return;
  }
  for (auto& cq : cqs) cq->Shutdown();
  for (std::thread& t : threads) t.join();
  threads.clear();
}

void GrpcServer::SetHealth(const std::string& name, bool serving) {
  for (HealthService* health : {health_.get(), probe_health_.get()}) {
    if (health != nullptr) health->SetServing(name, serving);
  }
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  listener_check_.reset();
  // NOT_SERVING for every name, and no later change back.
  if (health_ != nullptr) health_->Shutdown();
  if (probe_health_ != nullptr) probe_health_->Shutdown();
  // Open Watch streams never end by themselves: end them (UNAVAILABLE, and
  // new ones are refused) rather than hold the shutdown for its grace.
  if (watch_hub_ != nullptr) watch_hub_->CloseAll();
  gate_.reset();  // no new connections; probes are still answered (NOT_SERVING)
  StopServer(server_.get(), grace, calls_, cqs_, pollers_, nullptr);
  probe_gate_.reset();
  StopServer(probe_server_.get(), absl::ZeroDuration(), probe_calls_, probe_cqs_, probe_ticker_,
             &stop_ticking_);
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace cachecar::server
