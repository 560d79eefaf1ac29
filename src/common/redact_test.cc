// RedactDsn / DsnPassword: both libpq DSN forms, quoting, and no false hits.
#include "common/redact.h"

#include "gtest/gtest.h"

namespace cachecar {
namespace {

TEST(RedactDsnTest, KeywordForm) {
  EXPECT_EQ(RedactDsn("host=db port=5432 user=app password=hunter2 dbname=x"),
            "host=db port=5432 user=app password=*** dbname=x");
  EXPECT_EQ(DsnPassword("host=db password=hunter2"), "hunter2");
}

TEST(RedactDsnTest, QuotedValueWithSpacesAndEscapes) {
  const std::string dsn = R"(host=db password='a b\'c' sslmode=require)";
  EXPECT_EQ(RedactDsn(dsn), "host=db password='***' sslmode=require");
  EXPECT_EQ(DsnPassword(dsn), R"(a b\'c)");
}

TEST(RedactDsnTest, SpacesAroundEquals) {
  EXPECT_EQ(RedactDsn("host=db password = s3cret"), "host=db password = ***");
}

TEST(RedactDsnTest, UriAuthorityAndQuery) {
  EXPECT_EQ(RedactDsn("postgresql://app:hunter2@db:5432/x?sslmode=require"),
            "postgresql://app:***@db:5432/x?sslmode=require");
  EXPECT_EQ(RedactDsn("postgres://app@db/x?password=hunter2&sslmode=disable"),
            "postgres://app@db/x?password=***&sslmode=disable");
  EXPECT_EQ(DsnPassword("postgresql://app:hunter2@db/x"), "hunter2");
}

TEST(RedactDsnTest, NoPasswordLeavesTheDsnAlone) {
  EXPECT_EQ(RedactDsn("host=db user=password dbname=passwords"),
            "host=db user=password dbname=passwords");
  EXPECT_EQ(RedactDsn("postgresql://app@db/x"), "postgresql://app@db/x");
  EXPECT_EQ(DsnPassword("host=db"), "");
}

TEST(ScrubSecretTest, ReplacesEveryOccurrence) {
  EXPECT_EQ(ScrubSecret("bad hunter2 for hunter2", "hunter2"), "bad *** for ***");
  EXPECT_EQ(ScrubSecret("unchanged", ""), "unchanged");
}

}  // namespace
}  // namespace cachecar
