// See grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cachecar::server {
namespace {
constexpr const char* kHealthNames[] = {"", "cachecar.v1.Cache"};
}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const ServerOptions& options, service::CacheService& service) {
  auto server = std::unique_ptr<GrpcServer>(new GrpcServer());

  grpc::ServerBuilder builder;
  // Two servers must never share a port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);

  std::vector<ListenAddress> addresses;
  std::vector<std::unique_ptr<int>> selected_ports;
  for (const std::string& text : options.listen) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(text);
    if (!address.ok()) return address.status();
    if (address->kind == ListenAddress::Kind::kUnix) {
      auto claim = UnixSocketClaim::Claim(address->path);
      if (!claim.ok()) return claim.status();
      server->unix_claims_.push_back(std::move(*claim));
    } else if (absl::Status s = PreflightTcp(*address); !s.ok()) {
      return s;
    }
    selected_ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address->grpc_uri, grpc::InsecureServerCredentials(),
                             selected_ports.back().get());
    addresses.push_back(*address);
  }

  server->cache_service_ = std::make_unique<CacheGrpcService>(service);
  builder.RegisterService(server->cache_service_.get());
  server->health_ = std::make_unique<HealthService>(
      std::vector<std::string>(std::begin(kHealthNames), std::end(kHealthNames)));
  builder.RegisterService(server->health_.get());
  auto reflection = ReflectionService::Create();
  if (!reflection.ok()) return reflection.status();
  server->reflection_ = std::move(*reflection);
  builder.RegisterService(server->reflection_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "gRPC could not listen on [", absl::StrJoin(options.listen, ", "),
        "] (address in use, or not an address of this host?); see the log above"));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    const ListenAddress& a = addresses[i];
    if (a.kind == ListenAddress::Kind::kUnix) {
      server->bound_.push_back("unix://" + a.path);
    } else {
      const bool v6 = a.host.find(':') != std::string::npos;
      server->bound_.push_back(absl::StrCat(v6 ? "[" : "", a.host, v6 ? "]" : "", ":",
                                            *selected_ports[i]));
    }
  }
  server->health_->SetAllServing(true);
  return server;
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // NOT_SERVING for every name, and no later change back.
  health_->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

}  // namespace cachecar::server
