// See warm_start_file.h.
#include "service/warm_start_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/errno_text.h"

namespace cachecar::service {
namespace {

constexpr absl::string_view kMagic("CCWARM\r\n", 8);
constexpr size_t kHeaderBytes = 8 + 4 + 8 + 4;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

void PutU16(std::string& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Reads the body front to back; every read checks what is left first.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}
  bool U16(uint16_t* v) { return Int(2, v); }
  bool U32(uint32_t* v) { return Int(4, v); }
  bool U64(uint64_t* v) { return Int(8, v); }
  bool Bytes(size_t n, std::string* out) {
    if (data_.size() < n) return false;
    out->assign(data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  size_t left() const { return data_.size(); }

 private:
  template <typename T>
  bool Int(size_t n, T* v) {
    if (data_.size() < n) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; ++i) x |= uint64_t{static_cast<unsigned char>(data_[i])} << (8 * i);
    *v = static_cast<T>(x);
    data_.remove_prefix(n);
    return true;
  }
  absl::string_view data_;
};

absl::Status Corrupt(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("not a usable warm start file: ", why));
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", ErrnoText(errno)));
}

absl::Status WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError(ErrnoText(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

size_t WarmKeys::key_count() const {
  size_t n = 0;
  for (const WarmNamespace& ns : namespaces) n += ns.keys.size();
  return n;
}

uint32_t Crc32c(absl::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string EncodeWarmKeys(const WarmKeys& keys) {
  std::string body;
  PutU32(body, static_cast<uint32_t>(keys.namespaces.size()));
  for (const WarmNamespace& ns : keys.namespaces) {
    PutU16(body, static_cast<uint16_t>(ns.name.size()));
    body += ns.name;
    PutU32(body, static_cast<uint32_t>(ns.keys.size()));
    for (const std::string& k : ns.keys) {
      PutU32(body, static_cast<uint32_t>(k.size()));
      body += k;
    }
  }
  std::string out(kMagic);
  PutU32(out, kWarmFileVersion);
  PutU64(out, body.size());
  PutU32(out, Crc32c(body));
  out += body;
  return out;
}

absl::StatusOr<WarmKeys> DecodeWarmKeys(absl::string_view data, const WarmFileLimits& limits) {
  if (data.size() < kHeaderBytes) {
    return Corrupt(absl::StrCat(data.size(), " bytes, shorter than the ", kHeaderBytes,
                                "-byte header (truncated, or not this format)"));
  }
  if (data.substr(0, kMagic.size()) != kMagic) {
    return Corrupt("it does not start with the warm start magic (a foreign file?)");
  }
  Reader header(data.substr(kMagic.size(), kHeaderBytes - kMagic.size()));
  uint32_t version = 0, crc = 0;
  uint64_t length = 0;
  header.U32(&version);
  header.U64(&length);
  header.U32(&crc);
  if (version != kWarmFileVersion) {
    return Corrupt(absl::StrCat("format version ", version, "; this cachecar reads version ",
                                kWarmFileVersion));
  }
  const absl::string_view body = data.substr(kHeaderBytes);
  if (length != body.size()) {
    return Corrupt(absl::StrCat("the header says ", length, " bytes follow, ", body.size(),
                                " do (truncated or extended)"));
  }
  if (Crc32c(body) != crc) return Corrupt("the checksum does not match (corrupt)");
  Reader r(body);
  uint32_t namespaces = 0;
  if (!r.U32(&namespaces)) return Corrupt("truncated namespace count");
  WarmKeys out;
  for (uint32_t i = 0; i < namespaces; ++i) {
    WarmNamespace ns;
    uint16_t name_len = 0;
    uint32_t count = 0;
    if (!r.U16(&name_len) || name_len == 0 || name_len > 64 || !r.Bytes(name_len, &ns.name) ||
        !r.U32(&count)) {
      return Corrupt(absl::StrCat("namespace ", i, " is malformed"));
    }
    // Every key takes at least 5 bytes: a count larger than that allows is
    // corruption, caught before anything is reserved.
    if (count > r.left() / 5)
      return Corrupt(absl::StrCat("namespace ", ns.name, ": bad key count"));
    ns.keys.reserve(count);
    for (uint32_t k = 0; k < count; ++k) {
      uint32_t len = 0;
      std::string key;
      if (!r.U32(&len) || len == 0 || len > limits.max_key_bytes || !r.Bytes(len, &key)) {
        return Corrupt(absl::StrCat("namespace ", ns.name, ": key ", k, " is malformed (length ",
                                    len, ", max_key_bytes ", limits.max_key_bytes, ")"));
      }
      ns.keys.push_back(std::move(key));
    }
    out.namespaces.push_back(std::move(ns));
  }
  if (r.left() != 0) return Corrupt(absl::StrCat(r.left(), " bytes after the last namespace"));
  return out;
}

absl::Status WriteWarmStartFile(const std::string& path, const WarmKeys& keys) {
  const std::string data = EncodeWarmKeys(keys);
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", tmp);
  absl::Status s = WriteAll(fd, data);
  if (s.ok() && ::fsync(fd) != 0) s = absl::UnavailableError(ErrnoText(errno));
  ::close(fd);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", s.message()));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status err = Errno(absl::StrCat("cannot rename ", tmp, " to"), path);
    ::unlink(tmp.c_str());
    return err;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // the rename itself survives a crash
    ::close(dfd);
  }
  return absl::OkStatus();
}

absl::StatusOr<WarmKeys> ReadWarmStartFile(const std::string& path, const WarmFileLimits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no warm start file at ", path));
    return Errno("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Corrupt(absl::StrCat(path, " is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > limits.max_file_bytes) {
    ::close(fd);
    return Corrupt(absl::StrCat(path, " is ", st.st_size, " bytes, over the limit of ",
                                limits.max_file_bytes));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return DecodeWarmKeys(data, limits);
}

}  // namespace cachecar::service
