// See pg_harness.h.
#include "tests/integration/pg_harness.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace cachecar::testing {

std::string RunCommand(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  *status = ::pclose(pipe);
  return out;
}

std::map<std::string, std::string> ReadEnvFile(const std::string& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
      value = value.substr(1, value.size() - 2);
    }
    values[line.substr(0, eq)] = value;
  }
  return values;
}

const PgHarness& PgHarness::Get() {
  static const PgHarness* const harness = [] {
    const char* env_path = std::getenv("CACHECAR_TEST_PG_ENV");
    const char* pg_sh = std::getenv("CACHECAR_TEST_PG_SH");
    if (env_path == nullptr || pg_sh == nullptr) {
      std::fprintf(stderr,
                   "CACHECAR_TEST_PG_ENV / CACHECAR_TEST_PG_SH are not set: run this test "
                   "through ctest (fixture \"postgres\" starts PostgreSQL with tests/pg/pg.sh)\n");
      std::abort();
    }
    auto values = ReadEnvFile(env_path);
    auto* h = new PgHarness;
    h->dir_ = std::string(absl::StripSuffix(env_path, "/env"));
    h->pg_sh_ = pg_sh;
    h->port_ = values["PG_PORT"];
    h->bouncer_port_ = values["PGBOUNCER_PORT"];
    if (h->port_.empty()) {
      std::fprintf(stderr, "%s has no PG_PORT: did pg.sh start fail?\n", env_path);
      std::abort();
    }
    return h;
  }();
  return *harness;
}

std::string PgHarness::Dsn(const std::string& db) const {
  return absl::StrCat("host=127.0.0.1 port=", port_, " dbname=", db,
                      " user=postgres password=", password_);
}

std::string PgHarness::BouncerDsn() const {
  return absl::StrCat("host=127.0.0.1 port=", bouncer_port_,
                      " dbname=cachecar_test user=postgres password=", password_);
}

void PgHarness::CreateDatabase(const std::string& db) const {
  Psql("postgres", absl::StrCat("DROP DATABASE IF EXISTS ", db, " WITH (FORCE)"));
  Psql("postgres", absl::StrCat("CREATE DATABASE ", db));
}

std::string PgHarness::Psql(const std::string& db, const std::string& sql) const {
  char path[] = "/tmp/cachecar_psql_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  const ssize_t written = ::write(fd, sql.data(), sql.size());
  EXPECT_EQ(written, static_cast<ssize_t>(sql.size()));
  ::close(fd);
  int status = 0;
  const std::string out = RunCommand(
      absl::StrCat("/usr/lib/postgresql/15/bin/psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 "
                   "-p ",
                   port_, " -U postgres -d ", db, " -f ", path, " 2>&1"),
      &status);
  ::unlink(path);
  EXPECT_EQ(status, 0) << "psql failed on: " << sql << "\n" << out;
  return std::string(absl::StripSuffix(out, "\n"));
}

void PgHarness::StopServer() const {
  int status = 0;
  const std::string out =
      RunCommand(absl::StrCat("bash ", pg_sh_, " pg-stop ", dir_, " 2>&1"), &status);
  ASSERT_EQ(status, 0) << out;
}

void PgHarness::StartServer() const {
  int status = 0;
  const std::string out =
      RunCommand(absl::StrCat("bash ", pg_sh_, " pg-start ", dir_, " 2>&1"), &status);
  ASSERT_EQ(status, 0) << out;
}

}  // namespace cachecar::testing
