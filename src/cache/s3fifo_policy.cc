// S3-FIFO eviction: small FIFO, main FIFO with reinsertion, ghost table.
#include "cache/s3fifo_policy.h"

#include <algorithm>

namespace cachecar::cache::internal {

void GhostTable::Fit(size_t main_entries) {
  const size_t low = std::max(kMinSlots, main_entries);
  const size_t high = std::max(kMinSlots, 3 * main_entries);
  if (!slots_.empty() && slots_.size() >= low && slots_.size() <= high) return;
  std::vector<uint32_t> old = std::move(slots_);
  slots_.assign(std::max(kMinSlots, main_entries + main_entries / 2), 0);
  for (uint32_t stored : old) {
    if (stored != 0) slots_[Slot(stored)] = stored;
  }
}

void S3FifoPolicy::Insert(Entry* e) {
  e->freq = 0;
  const uint32_t fp = Fingerprint(e->hash);
  if (ghost_.Contains(fp)) {
    ghost_.Erase(fp);
    e->queue = kMain;
    main_.PushFront(e);
    return;
  }
  e->queue = kSmall;
  small_.PushFront(e);
  small_bytes_ += e->charge();
}

void S3FifoPolicy::Replace(Entry* old, Entry* fresh) {
  fresh->queue = old->queue;
  fresh->freq = old->freq;
  if (old->queue == kSmall) {
    small_.Replace(old, fresh);
    small_bytes_ = small_bytes_ - old->charge() + fresh->charge();
  } else {
    main_.Replace(old, fresh);
  }
}

void S3FifoPolicy::Remove(Entry* e) {
  if (e->queue == kSmall) {
    small_.Remove(e);
    small_bytes_ -= e->charge();
  } else {
    main_.Remove(e);
    ghost_.Fit(main_.size());
  }
}

Entry* S3FifoPolicy::Evict() {
  if (!small_.empty() && (small_bytes_ >= small_target_ || main_.empty())) {
    if (Entry* victim = EvictFromSmall()) return victim;
  }
  return EvictFromMain();
}

Entry* S3FifoPolicy::EvictFromSmall() {
  while (!small_.empty()) {
    Entry* e = small_.back();
    small_.Remove(e);
    small_bytes_ -= e->charge();
    if (e->freq >= kPromoteFreq) {
      e->freq = 0;
      e->queue = kMain;
      main_.PushFront(e);
      continue;
    }
    ghost_.Fit(main_.size());
    ghost_.Add(Fingerprint(e->hash));
    return e;
  }
  return nullptr;
}

Entry* S3FifoPolicy::EvictFromMain() {
  while (!main_.empty()) {
    Entry* e = main_.back();
    if (e->freq > 0) {
      --e->freq;
      main_.MoveToFront(e);
      continue;
    }
    main_.Remove(e);
    ghost_.Fit(main_.size());
    return e;
  }
  return nullptr;
}

void S3FifoPolicy::Clear() {
  small_.Reset();
  main_.Reset();
  small_bytes_ = 0;
  ghost_.Clear();
}

}  // namespace cachecar::cache::internal
