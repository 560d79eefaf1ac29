// SQL identifiers and literals that come from configuration (table and column
// names, namespace names baked into triggers). Names are checked against a
// conservative pattern and then always double-quoted, so a name is used
// exactly as written (case-sensitive) and can never become SQL. Values from
// requests never go through here: they are bound parameters.
#ifndef CACHECAR_STORE_POSTGRES_SQL_NAMES_H_
#define CACHECAR_STORE_POSTGRES_SQL_NAMES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cachecar::store::postgres {

// OK for [A-Za-z_][A-Za-z0-9_]{0,62}; else INVALID_ARGUMENT naming `what`.
absl::Status CheckIdentifier(absl::string_view name, absl::string_view what);

// OK for "table" or "schema.table", each part an identifier.
absl::Status CheckTableName(absl::string_view name, absl::string_view what);

// "name" → "\"name\""; "schema.table" → "\"schema\".\"table\"". Doubles any
// embedded quote, though checked names have none.
std::string QuoteName(absl::string_view name);

// 'text' with quotes doubled (standard_conforming_strings is on since 9.1).
std::string QuoteLiteral(absl::string_view text);

// The part after the last dot ("users" for "app.users").
absl::string_view BaseName(absl::string_view table);
// The schema prefix with its dot ("app." for "app.users"), or "".
std::string SchemaPrefix(absl::string_view table);

// A PostgreSQL text[] literal for `items`: {"a","b\"c"}. Bound as a
// parameter, never spliced into SQL.
std::string TextArrayLiteral(const std::vector<std::string>& items);

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_SQL_NAMES_H_
