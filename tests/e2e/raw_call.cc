// raw_call: sends one unary gRPC call whose request is the given bytes, as
// they are (no protobuf encoding), and prints the answer's status:
//   raw_call TARGET /package.Service/Method HEX
//   -> "code=3 message=..." (exit 0 whatever the code; 2 on bad usage)
// For end-to-end tests of what the server does with bytes that are not the
// message it expects (grpcurl always sends well-formed messages).
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>

namespace {

bool FromHex(const std::string& hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  for (size_t i = 0; i < hex.size(); i += 2) {
    char* end = nullptr;
    const std::string pair = hex.substr(i, 2);
    const long byte = std::strtol(pair.c_str(), &end, 16);
    if (end != pair.c_str() + 2) return false;
    out->push_back(static_cast<char>(byte));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bytes;
  if (argc != 4 || !FromHex(argv[3], &bytes)) {
    std::fprintf(stderr, "usage: raw_call TARGET /package.Service/Method HEX\n");
    return 2;
  }
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, argv[2], grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  std::printf("code=%d message=%s\n", static_cast<int>(status.error_code()),
              status.error_message().c_str());
  return 0;
}
