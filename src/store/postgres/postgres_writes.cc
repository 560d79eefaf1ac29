// Put, Delete and WriteBatch (see postgres_store.h): one statement per
// write (the triggers do the rest), and the precondition rules around them.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "store/outcome.h"
#include "store/postgres/postgres_impl.h"
#include "store/postgres/schema.h"

namespace cachecar::store {

using postgres::CallKind;
using postgres_internal::CheckKey;
using postgres_internal::kPut;
using postgres_internal::kPutIfAbsent;
using postgres_internal::kPutIfVersion;
using postgres_internal::kRemove;
using postgres_internal::kRemoveIfVersion;
using postgres_internal::Table;

std::optional<uint64_t> PostgresStore::Impl::PutIfDeletedAt(pqxx::connection& c, const Table& t,
                                                            absl::string_view ns,
                                                            const std::string& k,
                                                            const pqxx::binarystring& v,
                                                            uint64_t deleted_at) {
  pqxx::work tx(c);
  std::optional<uint64_t> written = PutIfDeletedAtIn(tx, t, ns, k, v, deleted_at);
  if (written.has_value()) tx.commit();
  return written;
}

std::optional<uint64_t> PostgresStore::Impl::PutIfDeletedAtIn(pqxx::transaction_base& tx,
                                                              const Table& t, absl::string_view ns,
                                                              const std::string& k,
                                                              const pqxx::binarystring& v,
                                                              uint64_t deleted_at) {
  const pqxx::result tomb =
      tx.exec_params(absl::StrCat("SELECT version FROM ", postgres::kTombstoneTable,
                                  " WHERE \"namespace\" = $1 AND \"key\" = $2 FOR UPDATE"),
                     std::string(ns), k);
  if (tomb.empty() || static_cast<uint64_t>(tomb[0][0].as<int64_t>()) != deleted_at) {
    return std::nullopt;
  }
  const pqxx::result r = ExecIn(tx, t, kPutIfAbsent, ns, k, v);
  if (r.empty()) return std::nullopt;
  return static_cast<uint64_t>(r[0][0].as<int64_t>());
}

absl::StatusOr<BatchWriteResult> PostgresStore::Impl::WriteIn(pqxx::transaction_base& tx,
                                                              const Table& t, absl::string_view ns,
                                                              const BatchWrite& w) {
  const std::string& k = w.key;
  const Precondition& p = w.precondition;
  const bool if_version = p.kind == Precondition::Kind::kIfVersion;
  if (!w.is_delete) {
    const pqxx::binarystring v(w.value.data(), w.value.size());
    const bool if_absent =
        p.kind == Precondition::Kind::kIfAbsent || (if_version && p.version == 0);
    pqxx::result r;
    if (p.kind == Precondition::Kind::kNone) {
      r = ExecIn(tx, t, kPut, ns, k, v);
    } else if (if_absent) {
      r = ExecIn(tx, t, kPutIfAbsent, ns, k, v);
    } else {
      r = ExecIn(tx, t, kPutIfVersion, ns, k, v, static_cast<int64_t>(p.version));
    }
    if (!r.empty()) return BatchWriteResult{static_cast<uint64_t>(r[0][0].as<int64_t>()), false};
    Record now = LoadIn(tx, ns, k);
    if (p.kind == Precondition::Kind::kIfAbsent) {
      return NotAbsentError(k, now.found ? now.version : 0);
    }
    if (!now.found && now.version == p.version && !if_absent) {
      if (std::optional<uint64_t> written = PutIfDeletedAtIn(tx, t, ns, k, v, p.version)) {
        return BatchWriteResult{*written, false};
      }
      now = LoadIn(tx, ns, k);
    }
    return VersionMismatchError(k, p.version, now.version, !now.found && now.version != 0);
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!if_version || p.version != 0) {
      const pqxx::result r =
          if_version ? ExecIn(tx, t, kRemoveIfVersion, ns, k, static_cast<int64_t>(p.version))
                     : ExecIn(tx, t, kRemove, ns, k);
      if (!r.empty()) return BatchWriteResult{static_cast<uint64_t>(r[0][0].as<int64_t>()), true};
    }
    const Record now = LoadIn(tx, ns, k);
    const bool matches = !if_version || (now.found ? p.version == now.version
                                                   : p.version == 0 || p.version == now.version);
    if (!matches) {
      return VersionMismatchError(k, p.version, now.version, !now.found && now.version != 0);
    }
    if (!now.found) return BatchWriteResult{now.version, false};
  }
  return absl::AbortedError("the key kept being re-inserted while deleting it; retry the batch");
}

absl::StatusOr<uint64_t> PostgresStore::Put(absl::string_view ns, absl::string_view key,
                                            absl::string_view value, Precondition precondition,
                                            const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string k(key);
  const pqxx::binarystring v(value.data(), value.size());
  // if_version 0 means "absent" (a version names a live value; absent is 0).
  const bool if_absent =
      precondition.kind == Precondition::Kind::kIfAbsent ||
      (precondition.kind == Precondition::Kind::kIfVersion && precondition.version == 0);
  return impl_->Run(CallKind::kWrite, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<uint64_t> {
                      const Table& t = impl_->TableFor(ns);
                      pqxx::result r;
                      if (precondition.kind == Precondition::Kind::kNone) {
                        r = impl_->Exec(c, t, kPut, ns, k, v);
                      } else if (if_absent) {
                        r = impl_->Exec(c, t, kPutIfAbsent, ns, k, v);
                      } else {
                        r = impl_->Exec(c, t, kPutIfVersion, ns, k, v,
                                        static_cast<int64_t>(precondition.version));
                      }
                      if (!r.empty()) return static_cast<uint64_t>(r[0][0].as<int64_t>());
                      // The precondition failed: say what is there now.
                      absl::StatusOr<Record> now = impl_->LoadOn(c, ns, key);
                      if (!now.ok()) return now.status();
                      const uint64_t live = now->found ? now->version : 0;
                      if (precondition.kind == Precondition::Kind::kIfAbsent)
                        return NotAbsentError(key, live);
                      // A key deleted at exactly that version (what Get
                      // reports for it): a read-modify-write of a deleted key.
                      if (!now->found && now->version == precondition.version && !if_absent) {
                        if (std::optional<uint64_t> written =
                                impl_->PutIfDeletedAt(c, t, ns, k, v, precondition.version)) {
                          return *written;
                        }
                        now = impl_->LoadOn(c, ns, key);
                        if (!now.ok()) return now.status();
                      }
                      return VersionMismatchError(key, precondition.version, now->version,
                                                  !now->found && now->version != 0);
                    });
}

absl::StatusOr<std::vector<BatchWriteResult>> PostgresStore::WriteBatch(
    absl::string_view ns, const std::vector<BatchWrite>& writes, const CallOptions& options) {
  for (const BatchWrite& w : writes) {
    if (absl::Status s = CheckKey(w.key); !s.ok()) return s;
  }
  // Rows are locked in key order, so two batches over the same keys cannot
  // deadlock each other.
  std::vector<size_t> order(writes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&writes](size_t a, size_t b) { return writes[a].key < writes[b].key; });
  return impl_->Run(CallKind::kWrite, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<BatchWriteResult>> {
                      const Table& t = impl_->TableFor(ns);
                      pqxx::work tx(c);
                      std::vector<BatchWriteResult> out(writes.size());
                      for (size_t i : order) {
                        absl::StatusOr<BatchWriteResult> r = impl_->WriteIn(tx, t, ns, writes[i]);
                        if (!r.ok()) return InBatchWrite(i, r.status());  // rolled back
                        out[i] = *r;
                      }
                      tx.commit();
                      return out;
                    });
}

absl::StatusOr<DeleteResult> PostgresStore::Delete(absl::string_view ns, absl::string_view key,
                                                   std::optional<uint64_t> if_version,
                                                   const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string k(key);
  return impl_->Run(
      CallKind::kWrite, options, [&](pqxx::connection& c) -> absl::StatusOr<DeleteResult> {
        const Table& t = impl_->TableFor(ns);
        // if_version 0 asks "delete only if absent": nothing to delete.
        const bool conditional = if_version.has_value();
        for (int attempt = 0; attempt < 3; ++attempt) {
          if (!conditional || *if_version != 0) {
            const pqxx::result r = conditional ? impl_->Exec(c, t, kRemoveIfVersion, ns, k,
                                                             static_cast<int64_t>(*if_version))
                                               : impl_->Exec(c, t, kRemove, ns, k);
            if (!r.empty()) return DeleteResult{true, static_cast<uint64_t>(r[0][0].as<int64_t>())};
          }
          absl::StatusOr<Record> now = impl_->LoadOn(c, ns, key);
          if (!now.ok()) return now.status();
          // An absent key matches 0 or the version it was deleted at (then
          // there is nothing to delete).
          const bool matches =
              !conditional || (now->found ? *if_version == now->version
                                          : *if_version == 0 || *if_version == now->version);
          if (!matches) {
            return VersionMismatchError(key, *if_version, now->version,
                                        !now->found && now->version != 0);
          }
          if (!now->found) return DeleteResult{false, now->version};
          // Unconditional, and a writer re-inserted the key between our DELETE
          // and the read: delete again.
        }
        return absl::AbortedError(
            absl::StrCat("key kept being re-inserted while deleting it; retry the delete"));
      });
}

}  // namespace cachecar::store
