// See raw_message.h. EncodeGetResponse writes the wire format with
// protobuf's own WireFormatLite/CodedOutputStream primitives; the unit test
// checks it against the generated GetResponse's serialization.
#include "server/raw_message.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include <cstring>
#include <string>

namespace cachecar::server {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

bool ParseMessage(const grpc::ByteBuffer& bytes, google::protobuf::Message* message) {
  grpc::Slice slice;
  // Small requests arrive as one slice; longer ones are joined first.
  if (!bytes.TrySingleSlice(&slice).ok() && !bytes.DumpToSingleSlice(&slice).ok()) {
    message->Clear();  // no payload bytes: the all-default message
    return true;
  }
  if (slice.size() > static_cast<size_t>(INT32_MAX)) return false;
  return message->ParseFromArray(slice.begin(), static_cast<int>(slice.size()));
}

grpc::Status UnparseableRequest(const google::protobuf::Message& expected) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "the request could not be parsed as " + expected.GetTypeName() +
                          " (not that message's protobuf encoding, or a string field that is "
                          "not valid UTF-8): check that the client uses cachecar's cache.proto");
}

grpc::ByteBuffer SerializeMessage(const google::protobuf::Message& message) {
  const size_t size = message.ByteSizeLong();
  grpc_slice slice = grpc_slice_malloc(size);
  message.SerializeWithCachedSizesToArray(GRPC_SLICE_START_PTR(slice));
  grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&owned, 1);
}

grpc::ByteBuffer EncodeGetResponse(bool found, std::string_view value, uint64_t version,
                                   v1::Source source) {
  constexpr int kFound = v1::GetResponse::kFoundFieldNumber;
  constexpr int kValue = v1::GetResponse::kValueFieldNumber;
  constexpr int kVersion = v1::GetResponse::kVersionFieldNumber;
  constexpr int kSource = v1::GetResponse::kSourceFieldNumber;
  const uint32_t value_size = static_cast<uint32_t>(value.size());
  size_t size = 0;
  if (found) size += 1 + 1;
  if (value_size > 0) size += 1 + CodedOutputStream::VarintSize32(value_size) + value_size;
  if (version != 0) size += 1 + CodedOutputStream::VarintSize64(version);
  if (source != 0) size += 1 + CodedOutputStream::VarintSize32SignExtended(source);
  grpc_slice slice = grpc_slice_malloc(size);
  uint8_t* p = GRPC_SLICE_START_PTR(slice);
  if (found) p = WireFormatLite::WriteBoolToArray(kFound, true, p);
  if (value_size > 0) {
    p = WireFormatLite::WriteTagToArray(kValue, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p);
    p = CodedOutputStream::WriteVarint32ToArray(value_size, p);
    std::memcpy(p, value.data(), value_size);
    p += value_size;
  }
  if (version != 0) p = WireFormatLite::WriteUInt64ToArray(kVersion, version, p);
  if (source != 0) p = WireFormatLite::WriteEnumToArray(kSource, source, p);
  grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
  return grpc::ByteBuffer(&owned, 1);
}

}  // namespace cachecar::server
