// ChangeOp: what one change does to a cached key or a namespace. The one op
// enum of cachecar: a change applied by a replica (service::Change, what
// Cache.Watch delivers) and a change announced on the sync topic
// (sync::Event, whose wire form is sync.proto's SyncOp) both use it.
//
// Thread-safety: plain values and a pure function.
#ifndef CACHECAR_COMMON_CHANGE_OP_H_
#define CACHECAR_COMMON_CHANGE_OP_H_

namespace cachecar {

enum class ChangeOp {
  kUpsert,      // the key now holds a value at `version`
  kDelete,      // the key was deleted at `version`
  kInvalidate,  // drop the key (version 0: an unversioned broadcast)
  kFlush,       // drop the whole namespace (`key` empty)
};

// "UPSERT", "DELETE", "INVALIDATE", "FLUSH", as on the wire and in logs.
const char* ChangeOpName(ChangeOp op);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_CHANGE_OP_H_
