// Load and LoadBatch (see postgres_store.h); the helpers that turn answer
// rows into Records.
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "store/postgres/postgres_impl.h"
#include "store/postgres/postgres_scan.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store {
namespace postgres_internal {

absl::Status CheckKey(absl::string_view key) {
  if (absl::StrContains(key, absl::string_view("\0", 1))) {
    return absl::InvalidArgumentError(
        "keys may not contain NUL bytes when the store is postgres (PostgreSQL text cannot "
        "hold them)");
  }
  return absl::OkStatus();
}

// Answer rows are (key text, found bool, value bytea, version bigint): the
// live row and the tombstone, either or both.
void Absorb(const pqxx::row& row, Record& record) {
  const bool found = row[1].as<bool>();
  const uint64_t version = static_cast<uint64_t>(row[3].as<int64_t>());
  if (found) {
    record.found = true;
    record.value = pqxx::binarystring(row[2]).str();
    record.version = version;
  } else if (!record.found) {
    record.version = version;
  }
}

}  // namespace postgres_internal

using postgres::CallKind;
using postgres_internal::Absorb;
using postgres_internal::CheckKey;
using postgres_internal::kLoad;
using postgres_internal::kLoadBatch;
using postgres_internal::kReadVersions;
using postgres_internal::Table;

Record PostgresStore::Impl::LoadIn(pqxx::transaction_base& tx, absl::string_view ns,
                                   absl::string_view key) {
  const Table& t = TableFor(ns);
  const std::string k(key);
  Record record;
  for (const pqxx::row& row : ExecIn(tx, t, kLoad, ns, k, k)) Absorb(row, record);
  return record;
}

absl::StatusOr<Record> PostgresStore::Impl::LoadOn(pqxx::connection& c, absl::string_view ns,
                                                   absl::string_view key) {
  pqxx::nontransaction tx(c);
  Record record = LoadIn(tx, ns, key);
  tx.commit();
  return record;
}

absl::StatusOr<Record> PostgresStore::Load(absl::string_view ns, absl::string_view key,
                                           const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) { return impl_->LoadOn(c, ns, key); });
}

absl::StatusOr<std::vector<Record>> PostgresStore::LoadBatch(absl::string_view ns,
                                                             const std::vector<std::string>& keys,
                                                             const CallOptions& options) {
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key); !s.ok()) return s;
  }
  if (keys.empty()) return std::vector<Record>{};
  const std::string array = postgres::TextArrayLiteral(keys);
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<Record>> {
                      const Table& t = impl_->TableFor(ns);
                      absl::flat_hash_map<std::string, Record> found;
                      for (const pqxx::row& row : impl_->Exec(c, t, kLoadBatch, ns, array, array)) {
                        Absorb(row, found[row[0].as<std::string>()]);
                      }
                      std::vector<Record> out;
                      out.reserve(keys.size());
                      for (const std::string& key : keys) {
                        auto it = found.find(key);
                        out.push_back(it == found.end() ? Record{} : it->second);
                      }
                      return out;
                    });
}

absl::StatusOr<VersionSnapshot> PostgresStore::ReadVersions(absl::string_view ns,
                                                            const std::vector<std::string>& keys,
                                                            const CallOptions& options) {
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key); !s.ok()) return s;
  }
  const std::string array = postgres::TextArrayLiteral(keys);
  return impl_->Run(
      CallKind::kRead, options, [&](pqxx::connection& c) -> absl::StatusOr<VersionSnapshot> {
        const Table& t = impl_->TableFor(ns);
        VersionSnapshot snapshot;
        absl::flat_hash_map<std::string, VersionRecord> found;
        for (const pqxx::row& row : impl_->Exec(c, t, kReadVersions, ns, array, array)) {
          snapshot.as_of = absl::FromUnixMicros(row[0].as<int64_t>());
          if (row[1].is_null()) continue;  // no key has a row
          VersionRecord& v = found[row[1].as<std::string>()];
          const bool live = row[2].as<bool>();
          // A live row wins over a tombstone (as in Absorb).
          if (v.found && !live) continue;
          v.found = live;
          v.version = static_cast<uint64_t>(row[3].as<int64_t>());
          v.written = absl::FromUnixMicros(row[4].as<int64_t>());
        }
        snapshot.records.reserve(keys.size());
        for (const std::string& key : keys) {
          auto it = found.find(key);
          snapshot.records.push_back(it == found.end() ? VersionRecord{} : it->second);
        }
        return snapshot;
      });
}

absl::StatusOr<std::vector<std::string>> PostgresStore::ScanKeys(absl::string_view ns,
                                                                 absl::string_view after,
                                                                 size_t limit,
                                                                 const CallOptions& options) {
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<std::string>> {
                      return postgres::ScanKeysOn(c, impl_->TableFor(ns).mapping, ns, after, limit);
                    });
}

}  // namespace cachecar::store
