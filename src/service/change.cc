// Names of change operations, as they appear on the wire and in logs.
#include "service/change.h"

namespace cachecar::service {

const char* ChangeOpName(ChangeOp op) {
  switch (op) {
    case ChangeOp::kUpsert:
      return "UPSERT";
    case ChangeOp::kDelete:
      return "DELETE";
    case ChangeOp::kInvalidate:
      return "INVALIDATE";
    case ChangeOp::kFlush:
      return "FLUSH";
  }
  return "UNKNOWN";
}

}  // namespace cachecar::service
