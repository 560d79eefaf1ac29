// Connection-string defaults: cachecar adds the libpq settings a sidecar
// needs (connect_timeout, TCP keepalives, application_name) unless the DSN
// already sets them; everything the operator wrote (sslmode, host lists,
// target_session_attrs, ...) passes through untouched.
#ifndef CACHECAR_STORE_POSTGRES_DSN_H_
#define CACHECAR_STORE_POSTGRES_DSN_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cachecar::store::postgres {

std::string WithConnectionDefaults(absl::string_view dsn, absl::Duration connect_timeout);

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_DSN_H_
