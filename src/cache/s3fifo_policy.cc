// S3-FIFO eviction: small FIFO, main FIFO with reinsertion, ghost FIFO.
#include "cache/s3fifo_policy.h"

namespace cachecar::cache::internal {

void GhostQueue::Add(uint32_t fp) {
  fifo_.push_back(fp);
  index_[fp] = next_seq_++;
}

void GhostQueue::TrimTo(size_t n) {
  while (fifo_.size() > n) {
    auto it = index_.find(fifo_.front());
    if (it != index_.end() && it->second == head_seq_) index_.erase(it);
    fifo_.pop_front();
    ++head_seq_;
  }
  ShrinkIfSparse(index_);
}

void GhostQueue::Clear() {
  fifo_ = {};
  index_ = {};
  head_seq_ = next_seq_ = 0;
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
    ghost_.TrimTo(main_.size());
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
    ghost_.Add(Fingerprint(e->hash));
    ghost_.TrimTo(main_.size());
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
    ghost_.TrimTo(main_.size());
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
