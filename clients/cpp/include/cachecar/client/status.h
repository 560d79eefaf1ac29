// The outcome of a cachecar client call: a gRPC status code and message, how
// many times the call was sent, and, for writes, whether its outcome is
// unknown (it may or may not have been applied). Result<T> is a value or
// such a Status.
//
// Plain value types; not synchronized (copy them between threads).
#ifndef CACHECAR_CLIENT_STATUS_H_
#define CACHECAR_CLIENT_STATUS_H_

#include <grpcpp/support/status_code_enum.h>

#include <optional>
#include <string>
#include <utility>

namespace cachecar::client {

class Status {
 public:
  Status() = default;
  Status(grpc::StatusCode code, std::string message, bool outcome_unknown = false)
      : code_(code), message_(std::move(message)), outcome_unknown_(outcome_unknown) {}

  bool ok() const { return code_ == grpc::StatusCode::OK; }
  grpc::StatusCode code() const { return code_; }
  // The message as cachecar (or gRPC, for transport failures) gave it.
  const std::string& message() const { return message_; }
  // True for a write that may or may not have been applied: cachecar said
  // "write outcome unknown", the connection broke while the call was in
  // flight, or its deadline passed after it was sent. Re-read the key to
  // learn what happened. Never true for reads.
  bool outcome_unknown() const { return outcome_unknown_; }
  // How many times the call was sent (1 when it was not retried).
  int attempts() const { return attempts_; }
  void set_attempts(int n) { attempts_ = n; }

  // "UNAVAILABLE: <message> (after 3 attempts; write outcome unknown)".
  std::string ToString() const;

 private:
  grpc::StatusCode code_ = grpc::StatusCode::OK;
  std::string message_;
  bool outcome_unknown_ = false;
  int attempts_ = 1;
};

// The gRPC code's name as cache.proto and grpc-go spell it: "UNAVAILABLE".
const char* CodeName(grpc::StatusCode code);

// A value of T, or the Status of a failed call.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // Only when ok().
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace cachecar::client

#endif  // CACHECAR_CLIENT_STATUS_H_
