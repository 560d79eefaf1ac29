// See outcome.h.
#include "store/outcome.h"

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace cachecar::store {
namespace {
constexpr absl::string_view kOutcomeUnknownUrl = "cachecar.dev/outcome-unknown";

// Keys are arbitrary bytes up to 1 KiB: escape them and keep messages short.
std::string Printable(absl::string_view key) {
  constexpr size_t kMax = 64;
  std::string out = absl::CHexEscape(key.substr(0, kMax));
  if (key.size() > kMax) absl::StrAppend(&out, "...");
  return out;
}
}  // namespace

absl::Status OutcomeUnknownError(absl::string_view message) {
  absl::Status status = absl::UnavailableError(
      absl::StrCat("write outcome unknown (it may have committed): ", message));
  status.SetPayload(kOutcomeUnknownUrl, absl::Cord("1"));
  return status;
}

bool IsOutcomeUnknown(const absl::Status& status) {
  return status.GetPayload(kOutcomeUnknownUrl).has_value();
}

absl::Status VersionMismatchError(absl::string_view key, uint64_t expected, uint64_t found,
                                  bool deleted) {
  return absl::AbortedError(absl::StrCat("precondition failed for key '", Printable(key),
                                         "': expected version ", expected, ", found version ",
                                         found,
                                         found == 0 ? " (key absent)"
                                         : deleted  ? " (key deleted at that version)"
                                                    : "",
                                         "; re-read the key and retry with its current version"));
}

absl::Status NotAbsentError(absl::string_view key, uint64_t found) {
  return absl::AbortedError(absl::StrCat("precondition failed for key '", Printable(key),
                                         "': expected it to be absent (if_absent), found version ",
                                         found));
}

absl::Status InBatchWrite(size_t index, const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAborted) return status;
  return absl::AbortedError(absl::StrCat("writes[", index, "]: ", status.message(),
                                         "; nothing in the batch was written"));
}

}  // namespace cachecar::store
