// Test access to the throwaway PostgreSQL that tests/pg/pg.sh started (ctest
// fixture "postgres"): DSNs, psql for "another program writes the table",
// fresh databases, and stopping/starting the server for outage tests.
#ifndef CACHECAR_TESTS_INTEGRATION_PG_HARNESS_H_
#define CACHECAR_TESTS_INTEGRATION_PG_HARNESS_H_

#include <map>
#include <string>

namespace cachecar::testing {

// Runs a shell command; returns its stdout, and its wait status in *status.
std::string RunCommand(const std::string& command, int* status);

// NAME=value lines of a fixture's env file ('quoted' values unquoted).
std::map<std::string, std::string> ReadEnvFile(const std::string& path);

class PgHarness {
 public:
  // Reads $CACHECAR_TEST_PG_ENV (written by pg.sh start); aborts the test
  // binary with a clear message when it is missing.
  static const PgHarness& Get();

  // DSNs for database `db` (direct, and through PgBouncer when db is
  // cachecar_test, the one PgBouncer knows).
  std::string Dsn(const std::string& db) const;
  std::string BouncerDsn() const;
  const std::string& password() const { return password_; }

  // Creates (or re-creates) database `db`.
  void CreateDatabase(const std::string& db) const;

  // Runs `sql` with psql in `db`; returns its unaligned, tuples-only output
  // without the trailing newline. Fails the test on a psql error.
  std::string Psql(const std::string& db, const std::string& sql) const;

  // pg.sh pg-stop / pg-start.
  void StopServer() const;
  void StartServer() const;

 private:
  std::string dir_;
  std::string pg_sh_;
  std::string port_;
  std::string bouncer_port_;
  std::string password_ = "pg-test-secret";
};

}  // namespace cachecar::testing

#endif  // CACHECAR_TESTS_INTEGRATION_PG_HARNESS_H_
