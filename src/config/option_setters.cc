// See option_setters.h.
#include "config/option_setters.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "common/redact.h"

namespace cachecar::config {

std::string ShowDsn(const Config& c) { return RedactDsn(c.postgres_dsn); }

// "a=1,b=x,y" is a=1 and b=x,y: a comma starts a new property only when
// what follows it has a '=' (librdkafka values such as debug contexts and
// cipher suites are comma lists themselves).
absl::Status AddKafkaProperties(Config& c, absl::string_view text) {
  std::vector<std::string> items;
  for (std::string& part : SplitList(text)) {
    if (!absl::StrContains(part, "=") && !items.empty()) {
      absl::StrAppend(&items.back(), ",", part);
    } else {
      items.push_back(std::move(part));
    }
  }
  for (std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", item, "\" is not name=value (e.g. security.protocol=SSL)"));
    }
    c.kafka_properties.push_back(std::move(item));
  }
  return absl::OkStatus();
}
// Values of properties that look secret are not shown.
std::string ShowKafkaProperties(const Config& c) {
  std::vector<std::string> shown;
  for (const std::string& item : c.kafka_properties) {
    const std::string name = item.substr(0, item.find('='));
    const std::string lower = absl::AsciiStrToLower(name);
    const bool secret = absl::StrContains(lower, "password") ||
                        absl::StrContains(lower, "secret") || absl::EndsWith(lower, ".key.pem") ||
                        lower == "sasl.oauthbearer.config";
    shown.push_back(secret ? name + "=***" : item);
  }
  return absl::StrJoin(shown, ",");
}
void ClearKafkaProperties(Config& c) { c.kafka_properties.clear(); }

absl::Status AddListen(Config& c, absl::string_view text) {
  for (std::string& address : SplitList(text)) {
    c.listen.push_back(std::move(address));
  }
  return absl::OkStatus();
}
std::string ShowListen(const Config& c) { return absl::StrJoin(c.listen, ","); }
void ClearListen(Config& c) { c.listen.clear(); }

absl::Status AddProbeListen(Config& c, absl::string_view text) {
  for (std::string& address : SplitList(text)) c.probe_listen.push_back(std::move(address));
  return absl::OkStatus();
}
std::string ShowProbeListen(const Config& c) { return absl::StrJoin(c.probe_listen, ","); }
void ClearProbeListen(Config& c) { c.probe_listen.clear(); }

absl::Status AddNamespaces(Config& c, absl::string_view text) {
  for (const std::string& spec : SplitList(text)) {
    absl::StatusOr<NamespaceConfig> ns = ParseNamespaceSpec(spec);
    if (!ns.ok()) return ns.status();
    c.namespaces.push_back(*std::move(ns));
  }
  return absl::OkStatus();
}
std::string ShowNamespaces(const Config& c) {
  std::vector<std::string> specs;
  for (const NamespaceConfig& ns : c.namespaces) {
    specs.push_back(FormatNamespaceSpec(ns));
  }
  return absl::StrJoin(specs, ",");
}
void ClearNamespaces(Config& c) { c.namespaces.clear(); }

}  // namespace cachecar::config
