// See change_op.h.
#include "common/change_op.h"

namespace cachecar {

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

}  // namespace cachecar
