// FaultPointFires: armed by CACHECAR_FAULT_POINT=skip_event/3, which ctest
// sets for this binary (src/common/CMakeLists.txt).
#include "common/fault_point.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace cachecar {
namespace {

TEST(FaultPointTest, FiresOnMultiplesOfItsPeriodOnly) {
  const char* armed = std::getenv("CACHECAR_FAULT_POINT");
  ASSERT_NE(armed, nullptr) << "run through ctest (it sets CACHECAR_FAULT_POINT)";
  ASSERT_EQ(std::string(armed), "skip_event/3");
  EXPECT_TRUE(FaultPointFires(kFaultSkipEvent, 3));
  EXPECT_TRUE(FaultPointFires(kFaultSkipEvent, 9));
  EXPECT_FALSE(FaultPointFires(kFaultSkipEvent, 4));
  EXPECT_FALSE(FaultPointFires(kFaultSkipEvent, 5));
  EXPECT_FALSE(FaultPointFires(kFaultAfterCommit, 3));  // another point is not armed
  FaultPoint(kFaultAfterCommit);                        // not armed: returns
}

}  // namespace
}  // namespace cachecar
