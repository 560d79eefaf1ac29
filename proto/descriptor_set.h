// The FileDescriptorSet, with comments, of every .proto cachecar serves
// (generated at build time by proto/CMakeLists.txt).
#ifndef CACHECAR_PROTO_DESCRIPTOR_SET_H_
#define CACHECAR_PROTO_DESCRIPTOR_SET_H_

#include <cstddef>

namespace cachecar::proto {
extern const unsigned char kDescriptorSet[];
extern const size_t kDescriptorSetSize;
}  // namespace cachecar::proto

#endif  // CACHECAR_PROTO_DESCRIPTOR_SET_H_
