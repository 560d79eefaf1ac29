// Fuzz target: DecodeEvent, which reads what any service publishes to the
// sync topic. A decoded event must encode and decode to the same event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sync/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view payload(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<cachecar::sync::Event> event = cachecar::sync::DecodeEvent(payload);
  if (!event.ok()) return 0;
  absl::StatusOr<cachecar::sync::Event> again =
      cachecar::sync::DecodeEvent(cachecar::sync::EncodeEvent(*event));
  if (!again.ok() || again->ns != event->ns || again->key != event->key ||
      again->version != event->version || again->op != event->op || again->value != event->value ||
      again->origin != event->origin) {
    std::abort();  // the round trip lost something
  }
  cachecar::sync::MessageKey(event->ns, event->key);
  return 0;
}
