// See grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/metrics_interceptor.h"

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

// Listening ports added to a builder, resolved after BuildAndStart.
struct Listeners {
  std::vector<ListenAddress> addresses;
  std::vector<std::unique_ptr<int>> ports;

  std::vector<std::string> Bound() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < addresses.size(); ++i) {
      const ListenAddress& a = addresses[i];
      if (a.kind == ListenAddress::Kind::kUnix) {
        out.push_back("unix://" + a.path);
      } else {
        const bool v6 = a.host.find(':') != std::string::npos;
        out.push_back(absl::StrCat(v6 ? "[" : "", a.host, v6 ? "]" : "", ":", *ports[i]));
      }
    }
    return out;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const ServerOptions& options,
                                                              service::CacheService& service) {
  auto server = std::unique_ptr<GrpcServer>(new GrpcServer());

  // Checks and claims each address, then adds it to `builder`.
  auto add_listeners = [&server](const std::vector<std::string>& texts,
                                 grpc::ServerBuilder& builder,
                                 Listeners& listeners) -> absl::Status {
    // Two servers must never share a port silently.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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
      listeners.ports.push_back(std::make_unique<int>(0));
      builder.AddListeningPort(address->grpc_uri, grpc::InsecureServerCredentials(),
                               listeners.ports.back().get());
      listeners.addresses.push_back(*address);
    }
    return absl::OkStatus();
  };

  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
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
    return absl::UnavailableError(
        absl::StrCat("gRPC could not listen on [", absl::StrJoin(options.listen, ", "),
                     "] (address in use, or not an address of this host?); see the log above"));
  }
  server->bound_ = listeners.Bound();

  if (!options.probe_listen.empty()) {
    grpc::ServerBuilder probe_builder;
    Listeners probe_listeners;
    if (absl::Status s = add_listeners(options.probe_listen, probe_builder, probe_listeners);
        !s.ok()) {
      return s;
    }
    server->probe_health_ = std::make_unique<HealthService>(HealthNames());
    probe_builder.RegisterService(server->probe_health_.get());
    server->probe_server_ = probe_builder.BuildAndStart();
    if (server->probe_server_ == nullptr) {
      return absl::UnavailableError(absl::StrCat("gRPC could not listen on probe_listen [",
                                                 absl::StrJoin(options.probe_listen, ", "),
                                                 "]; see the log above"));
    }
    server->probe_bound_ = probe_listeners.Bound();
  }
  for (HealthService* health : {server->health_.get(), server->probe_health_.get()}) {
    if (health != nullptr) health->SetServing(kLivenessName, true);
  }
  return server;
}

void GrpcServer::SetReady(bool ready) {
  for (HealthService* health : {health_.get(), probe_health_.get()}) {
    if (health == nullptr) continue;
    for (const char* name : kReadinessNames) health->SetServing(name, ready);
  }
}

void GrpcServer::SetHealth(const std::string& name, bool serving) {
  for (HealthService* health : {health_.get(), probe_health_.get()}) {
    if (health != nullptr) health->SetServing(name, serving);
  }
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // NOT_SERVING for every name, and no later change back.
  health_->Shutdown();
  if (probe_health_ != nullptr) probe_health_->Shutdown();
  // Open Watch streams never end by themselves: end them (UNAVAILABLE, and
  // new ones are refused) rather than hold the shutdown for its grace.
  if (watch_hub_ != nullptr) watch_hub_->CloseAll();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  if (probe_server_ != nullptr) {
    probe_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    probe_server_->Wait();
  }
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace cachecar::server
