// Fuzz target: AdmissionReview parsing and the webhook's answer. An answer
// must be JSON, and its patch valid base64 of a JSON array.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "inject/injector.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> answer = cachecar::inject::ReviewAdmission(body);
  if (!answer.ok()) return 0;
  const nlohmann::json review = nlohmann::json::parse(*answer, nullptr, false);
  if (review.is_discarded()) std::abort();
  const nlohmann::json& response = review.at("response");
  if (response.contains("patch")) {
    std::string patch;
    if (!absl::Base64Unescape(response.at("patch").get<std::string>(), &patch)) std::abort();
    if (!nlohmann::json::parse(patch, nullptr, false).is_array()) std::abort();
  }
  return 0;
}
