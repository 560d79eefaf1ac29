// See store_fill.h.
#include "service/store_fill.h"

#include <optional>
#include <string_view>
#include <utility>

namespace cachecar::service {

absl::StatusOr<std::vector<bool>> FillFromStore(Namespace& ns, store::Store& store,
                                                const std::vector<std::string>& keys,
                                                absl::Time deadline) {
  std::vector<cache::FillTicket> tickets;
  tickets.reserve(keys.size());
  for (const std::string& k : keys) tickets.push_back(ns.engine->BeginFill(k));
  ns.loads.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<std::vector<store::Record>> records = store.LoadBatch(ns.name, keys, {deadline});
  if (!records.ok() || records->size() != keys.size()) {
    for (cache::FillTicket& t : tickets) ns.engine->AbandonFill(std::move(t));
    if (!records.ok()) return records.status();
    return absl::InternalError("the store answered a different number of keys");
  }
  std::vector<bool> filled(keys.size(), false);
  for (size_t i = 0; i < keys.size(); ++i) {
    const store::Record& r = (*records)[i];
    std::optional<std::string_view> value;
    if (r.found) value = std::string_view(r.value.data(), r.value.size());
    filled[i] = ns.engine->CompleteFill(std::move(tickets[i]), r.version, value) ==
                cache::FillResult::kAccepted;
  }
  return filled;
}

}  // namespace cachecar::service
