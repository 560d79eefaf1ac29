// See postgres_scan.h.
#include "store/postgres/postgres_scan.h"

#include "absl/strings/str_cat.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store::postgres {

std::string ScanKeysSql(const TableMapping& m) {
  const std::string table = QuoteName(m.table);
  // Each branch takes its own first page, so a page costs two index range
  // scans of `limit` rows, not a scan of everything after `after`.
  std::string rows;
  if (m.shared()) {
    rows = absl::StrCat("SELECT \"key\" AS k FROM ", table,
                        " WHERE \"namespace\" = $1 AND \"key\" > $2 ORDER BY \"key\" LIMIT $3");
  } else {
    const std::string key = absl::StrCat(QuoteName(m.key_column), "::text");
    rows = absl::StrCat("SELECT ", key, " AS k FROM ", table, " WHERE ", key, " > $2 ORDER BY ",
                        key, " LIMIT $3");
  }
  return absl::StrCat("(", rows, ") UNION (SELECT \"key\" FROM ", kTombstoneTable,
                      " WHERE \"namespace\" = $1::text AND \"key\" > $2 ORDER BY \"key\" LIMIT $3)"
                      " ORDER BY k LIMIT $3");
}

std::vector<std::string> ScanKeysOn(pqxx::connection& c, const TableMapping& mapping,
                                    absl::string_view ns, absl::string_view after, size_t limit) {
  pqxx::nontransaction tx(c);
  const pqxx::result rows = tx.exec_params(ScanKeysSql(mapping), std::string(ns),
                                           std::string(after), static_cast<int64_t>(limit));
  tx.commit();
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const pqxx::row& row : rows) out.push_back(row[0].as<std::string>());
  return out;
}

}  // namespace cachecar::store::postgres
