// Redaction of secrets in PostgreSQL connection strings, for logs, errors and
// --help. Both libpq forms are handled: key=value ("password=..." and
// "password='quoted value'") and URIs ("postgresql://user:secret@host/db",
// "?password=..."). Everything else in the string is kept, so an operator can
// still see which host and database were meant.
#ifndef CACHECAR_COMMON_REDACT_H_
#define CACHECAR_COMMON_REDACT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace cachecar {

// The DSN with every password replaced by "***".
std::string RedactDsn(absl::string_view dsn);

// The password in `dsn`, or "" if it names none. Used to scrub error texts
// from drivers that might echo it back.
std::string DsnPassword(absl::string_view dsn);

// `text` with every occurrence of `secret` replaced by "***" (no-op when
// `secret` is empty).
std::string ScrubSecret(absl::string_view text, absl::string_view secret);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_REDACT_H_
