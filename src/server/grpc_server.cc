// See grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/metrics_interceptor.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {
constexpr const char* kReadinessNames[] = {"", "cachecar.v1.Cache", kReadinessName};

std::vector<std::string> HealthNames() {
  std::vector<std::string> names(std::begin(kReadinessNames), std::end(kReadinessNames));
  names.push_back(kLivenessName);
  return names;
}

// Addresses checked and claimed, for a ConnectionGate to bind once the
// server runs.
struct Listeners {
  std::vector<ListenAddress> addresses;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const ServerOptions& options,
                                                              service::CacheService& service) {
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
  if (options.metrics != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MetricsInterceptorFactory(*options.metrics));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }

  server->cache_service_ = std::make_unique<CacheGrpcService>(service, options.watch_hub);
  server->watch_hub_ = options.watch_hub;
  builder.RegisterService(server->cache_service_.get());
  server->health_ = std::make_unique<HealthService>(HealthNames());
  builder.RegisterService(server->health_.get());
  auto reflection = ReflectionService::Create();
  if (!reflection.ok()) return reflection.status();
  server->reflection_ = std::move(*reflection);
  builder.RegisterService(server->reflection_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError("gRPC could not start its server; see the log above");
  }
  auto gate = ConnectionGate::Start("api", listeners.addresses, server->server_.get(),
                                    options.connections);
  if (!gate.ok()) return gate.status();
  server->gate_ = *std::move(gate);
  server->bound_ = server->gate_->bound();

  if (!options.probe_listen.empty()) {
    grpc::ServerBuilder probe_builder;
    Listeners probe_listeners;
    if (absl::Status s = add_listeners(options.probe_listen, probe_builder, probe_listeners);
        !s.ok()) {
      return s;
    }
    ApplyConnectionArgs(probe_builder, options.probe_connections);
    server->probe_health_ = std::make_unique<HealthService>(HealthNames());
    probe_builder.RegisterService(server->probe_health_.get());
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

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  listener_check_.reset();
  // NOT_SERVING for every name, and no later change back.
  health_->Shutdown();
  if (probe_health_ != nullptr) probe_health_->Shutdown();
  // Open Watch streams never end by themselves: end them (UNAVAILABLE, and
  // new ones are refused) rather than hold the shutdown for its grace.
  if (watch_hub_ != nullptr) watch_hub_->CloseAll();
  gate_.reset();  // no new connections; probes are still answered (NOT_SERVING)
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  probe_gate_.reset();
  if (probe_server_ != nullptr) {
    probe_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    probe_server_->Wait();
  }
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace cachecar::server
