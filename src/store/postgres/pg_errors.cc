// See pg_errors.h.
#include "store/postgres/pg_errors.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/redact.h"
#include "pqxx/except"
#include "store/outcome.h"

namespace cachecar::store::postgres {
namespace {

Failure Lost(CallKind kind, const std::string& detail) {
  Failure f;
  f.connection_lost = true;
  f.status = kind == CallKind::kWrite
                 ? OutcomeUnknownError(absl::StrCat("PostgreSQL connection lost: ", detail))
                 : absl::UnavailableError(absl::StrCat("PostgreSQL connection lost: ", detail));
  return f;
}

Failure FromSqlState(CallKind kind, bool cancelled, const std::string& state,
                     const std::string& detail) {
  Failure f;
  auto in_class = [&state](absl::string_view c) { return absl::StartsWith(state, c); };
  if (state == "57014") {
    f.status = absl::DeadlineExceededError(
        absl::StrCat(cancelled ? "deadline passed; PostgreSQL statement cancelled: "
                               : "PostgreSQL statement timed out: ",
                     detail));
    f.connection_lost = cancelled;  // do not reuse a connection we cancelled on
  } else if (in_class("08") || state == "57P01" || state == "57P02" || state == "57P03") {
    return Lost(kind, detail);
  } else if (state == "40001" || state == "40P01") {
    f.retryable = true;
    f.status = absl::UnavailableError(
        absl::StrCat("PostgreSQL: conflict with a concurrent transaction: ", detail));
  } else if (in_class("53") || in_class("58") || state == "25006" || state == "55P03") {
    f.status = absl::UnavailableError(absl::StrCat("PostgreSQL: ", detail));
  } else if (in_class("42")) {
    f.status =
        absl::FailedPreconditionError(absl::StrCat("PostgreSQL: ", detail, "; ", kMigrateHint));
  } else if (in_class("22")) {
    f.status = absl::InvalidArgumentError(absl::StrCat("PostgreSQL rejected the data: ", detail));
  } else if (in_class("23")) {
    f.status = absl::AbortedError(absl::StrCat("PostgreSQL constraint violated: ", detail));
  } else if (state == "P0001") {
    f.status = absl::AbortedError(absl::StrCat("PostgreSQL trigger refused the write: ", detail));
  } else {
    f.status = absl::InternalError(absl::StrCat("PostgreSQL error ", state, ": ", detail));
  }
  return f;
}

}  // namespace

std::string FirstLine(absl::string_view text) {
  absl::string_view line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
  return std::string(line);
}

const char kMigrateHint[] =
    "the cachecar schema is missing or out of date: run `cachecar migrate` with the same "
    "config (or start with --migrate)";

Failure ClassifyCurrentException(CallKind kind, bool cancelled, const std::string& password) {
  Failure f;
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    f = Lost(kind, FirstLine(e.what()));
  } catch (const pqxx::in_doubt_error& e) {
    f = Lost(CallKind::kWrite, FirstLine(e.what()));
  } catch (const pqxx::statement_completion_unknown& e) {
    f = Lost(kind, FirstLine(e.what()));
  } catch (const pqxx::serialization_failure& e) {
    f = FromSqlState(kind, cancelled, "40001", FirstLine(e.what()));
  } catch (const pqxx::deadlock_detected& e) {
    f = FromSqlState(kind, cancelled, "40P01", FirstLine(e.what()));
  } catch (const pqxx::sql_error& e) {
    f = FromSqlState(kind, cancelled, e.sqlstate(), FirstLine(e.what()));
  } catch (const std::exception& e) {
    f.status = absl::InternalError(absl::StrCat("PostgreSQL client error: ", FirstLine(e.what())));
  }
  if (!password.empty() && absl::StrContains(f.status.message(), password)) {
    // Rebuild with the same code and payloads, minus the secret.
    absl::Status scrubbed(f.status.code(), ScrubSecret(f.status.message(), password));
    f.status.ForEachPayload([&scrubbed](absl::string_view url, const absl::Cord& payload) {
      scrubbed.SetPayload(url, payload);
    });
    f.status = scrubbed;
  }
  return f;
}

}  // namespace cachecar::store::postgres
