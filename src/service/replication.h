// Replication: the seam between the read/write paths (CacheService) and
// the other replicas. CacheService tells it about every change it commits,
// and asks it whether the cache may answer CACHED reads (docs/DESIGN.md C4).
// SyncReplication implements it over a sync topic; without one, CacheService
// runs with none (a single replica: the cache is always trusted).
//
// Thread-safety: implementations are called from many threads at once.
#ifndef CACHECAR_SERVICE_REPLICATION_H_
#define CACHECAR_SERVICE_REPLICATION_H_

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/change.h"
#include "service/namespaces.h"

namespace cachecar::service {

class Replication {
 public:
  virtual ~Replication() = default;
  // A change made through this replica, already applied to its engine;
  // `value` is the new value of an upsert. Must not block.
  virtual void Announce(const Namespace& ns, const Change& change, absl::string_view value) = 0;
  // false: this replica cannot show it is within max_staleness, so CACHED
  // reads go to the store. Called on every read: must be cheap.
  virtual bool CacheTrusted() const = 0;
  // The instant up to which this replica vouches for its cache: CACHED
  // reads at or before it may be answered from the cache (InfiniteFuture:
  // always; InfinitePast: not now). The published cache carries it to local
  // readers (docs/LOCAL_READS.md), so it must say what CacheTrusted says:
  // CacheTrusted() == (Now() <= TrustedUntil()). The default is right for
  // a replica that knows no instant, only yes or no.
  virtual absl::Time TrustedUntil() const {
    return CacheTrusted() ? absl::InfiniteFuture() : absl::InfinitePast();
  }
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_REPLICATION_H_
