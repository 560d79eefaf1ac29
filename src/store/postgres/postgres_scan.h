// Store::ScanKeys for PostgreSQL: one page of a namespace's keys in key
// order (replicated namespaces load their whole table with it at start):
// the keys of the table's rows and of the namespace's tombstones (deleted
// keys whose delete version cachecar_tombstones still holds), merged. The
// shared table pages by ("namespace", "key"), its primary key, and so do
// the tombstones; a mapped table by its key column's text form (a sort per
// page: meant for the small reference tables replicated namespaces are for).
//
// Thread-safety: plain functions; the connection is the caller's.
#ifndef CACHECAR_STORE_POSTGRES_POSTGRES_SCAN_H_
#define CACHECAR_STORE_POSTGRES_POSTGRES_SCAN_H_

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "store/postgres/schema.h"

namespace cachecar::store::postgres {

// The page's SQL: parameters $1 namespace, $2 after, $3 limit.
std::string ScanKeysSql(const TableMapping& mapping);

// Runs one page on `c` (throws what libpqxx throws; the caller maps it).
std::vector<std::string> ScanKeysOn(pqxx::connection& c, const TableMapping& mapping,
                                    absl::string_view ns, absl::string_view after, size_t limit);

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_POSTGRES_SCAN_H_
