// Quantities and DNS names as Kubernetes spells them, and that attacker-
// sized input is refused in linear time.
#include "inject/quantity.h"

#include <string>

#include "gtest/gtest.h"

namespace cachecar::inject {
namespace {

TEST(QuantityTest, KubernetesForms) {
  for (const char* good : {"1", "250m", "0.5", ".5", "5.", "+1", "512Mi", "1Gi", "2Ei", "1k", "3M",
                           "100n", "7u", "1e3", "1E-2", "1.5e+6", "0"}) {
    EXPECT_TRUE(IsKubernetesQuantity(good)) << good;
  }
  for (const char* bad : {"", "-1", "1Ki2", "1KiB", "lots", "1 Gi", ".", "+", "1..2", "e3", "1e",
                          "1e+", "1mi", "1Gb", "1.2.3", "0x10", "1i"}) {
    EXPECT_FALSE(IsKubernetesQuantity(bad)) << bad;
  }
}

TEST(QuantityTest, LongInputIsRefusedWithoutRecursion) {
  EXPECT_FALSE(IsKubernetesQuantity(std::string(50000, '9')));
  EXPECT_FALSE(IsKubernetesQuantity(std::string(10'000'000, '9') + "Mi"));
  EXPECT_TRUE(IsKubernetesQuantity(std::string(kMaxQuantityChars, '9')));
  EXPECT_FALSE(IsKubernetesQuantity(std::string(kMaxQuantityChars + 1, '9')));
}

TEST(DnsSubdomainTest, ConfigMapNames) {
  for (const char* good : {"a", "cachecar", "my-cfg", "a.b-c.d", "0abc9"}) {
    EXPECT_TRUE(IsDnsSubdomain(good)) << good;
  }
  for (const char* bad : {"", "-a", "a-", ".a", "A", "a_b", "a b", "a/b"}) {
    EXPECT_FALSE(IsDnsSubdomain(bad)) << bad;
  }
  EXPECT_TRUE(IsDnsSubdomain(std::string(253, 'a')));
  EXPECT_FALSE(IsDnsSubdomain(std::string(254, 'a')));
  EXPECT_FALSE(IsDnsSubdomain(std::string(50000, 'a')));
}

}  // namespace
}  // namespace cachecar::inject
