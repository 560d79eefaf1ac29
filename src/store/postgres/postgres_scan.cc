// See postgres_scan.h.
#include "store/postgres/postgres_scan.h"

#include "absl/strings/str_cat.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store::postgres {

std::string ScanKeysSql(const TableMapping& m) {
  const std::string table = QuoteName(m.table);
  if (m.shared()) {
    return absl::StrCat("SELECT \"key\" FROM ", table,
                        " WHERE \"namespace\" = $1 AND \"key\" > $2 ORDER BY \"key\" LIMIT $3");
  }
  const std::string key = absl::StrCat(QuoteName(m.key_column), "::text");
  return absl::StrCat("SELECT ", key, " FROM ", table, " WHERE ", key, " > $1 ORDER BY ", key,
                      " LIMIT $2");
}

std::vector<std::string> ScanKeysOn(pqxx::connection& c, const TableMapping& mapping,
                                    absl::string_view ns, absl::string_view after, size_t limit) {
  pqxx::nontransaction tx(c);
  const std::string sql = ScanKeysSql(mapping);
  const auto n = static_cast<int64_t>(limit);
  const pqxx::result rows = mapping.shared()
                                ? tx.exec_params(sql, std::string(ns), std::string(after), n)
                                : tx.exec_params(sql, std::string(after), n);
  tx.commit();
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const pqxx::row& row : rows) out.push_back(row[0].as<std::string>());
  return out;
}

}  // namespace cachecar::store::postgres
