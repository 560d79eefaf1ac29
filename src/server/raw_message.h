// Messages to and from the bytes gRPC hands cachecar's raw methods.
//
// cachecar registers every method raw (the request arrives as bytes) so that
// it parses requests itself: a request that does not parse gets
// INVALID_ARGUMENT saying so, where gRPC would answer INTERNAL (async API) or
// UNIMPLEMENTED with no message (callback API). Answers are serialized here
// too; a Get hit is encoded straight from the cache entry (EncodeGetResponse),
// one copy from the engine to the wire.
//
// Thread-safety: stateless functions.
#ifndef CACHECAR_SERVER_RAW_MESSAGE_H_
#define CACHECAR_SERVER_RAW_MESSAGE_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <string_view>

#include "cachecar/v1/cache.pb.h"

namespace cachecar::server {

// Parses `bytes` into `message`; false if they are not a valid message of
// its type (bad wire format, or invalid UTF-8 in a string field).
bool ParseMessage(const grpc::ByteBuffer& bytes, google::protobuf::Message* message);

// The answer to a request that did not parse: INVALID_ARGUMENT naming the
// expected message type.
grpc::Status UnparseableRequest(const google::protobuf::Message& expected);

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message);

// The bytes of a cachecar.v1.GetResponse with these fields (what
// SerializeMessage of the same GetResponse gives; proto3 leaves out fields
// at their defaults), without building the message: one copy of `value`.
grpc::ByteBuffer EncodeGetResponse(bool found, std::string_view value, uint64_t version,
                                   v1::Source source);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_RAW_MESSAGE_H_
