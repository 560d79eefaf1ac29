// The cluster harness (cluster_harness.h): processes, the Kafka fixture,
// /metrics, replicas over gRPC and the ClusterTest fixture.
#include "tests/sync/cluster_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/integration/pg_harness.h"

extern char** environ;

namespace cachecar::testing {

using grpc::health::v1::HealthCheckResponse;

std::string Seconds(absl::Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f s", absl::ToDoubleSeconds(d));
  return buf;
}

void PrintDelay(const std::string& what, absl::Duration d) {
  std::printf("sync delay: %-60s %s\n", what.c_str(), Seconds(d).c_str());
  std::fflush(stdout);
}

// Calls `done` every `every` until it returns true or `bound` passes; the
// time it took, or nullopt on timeout.
std::optional<absl::Duration> PollUntil(absl::Duration bound, const std::function<bool()>& done,
                                        absl::Duration every) {
  Stopwatch watch;
  for (;;) {
    if (done()) return watch.Elapsed();
    if (watch.Elapsed() > bound) return std::nullopt;
    absl::SleepFor(every);
  }
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string RequireEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    std::fprintf(stderr, "%s is not set: run this test through ctest\n", name);
    std::abort();
  }
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Tail(const std::string& text, size_t lines) {
  size_t at = text.size();
  for (size_t n = 0; n <= lines && at > 0; ++n) {
    const size_t nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) return text;
    at = nl;
  }
  return text.substr(at + 1);
}

// ---------------------------------------------------------------------------
// Process.

void Process::Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(log_fd, 0) << log_ << ": " << std::strerror(errno);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  ASSERT_GT(pid, 0) << "fork: " << std::strerror(errno);
  pid_ = pid;
}

bool Process::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

std::optional<int> Process::WaitExit(absl::Duration bound) {
  PollUntil(
      bound, [this] { return !Running(); }, absl::Milliseconds(10));
  if (pid_ > 0) return std::nullopt;
  return exit_status_;
}

void Process::Terminate() {
  if (Running()) ::kill(pid_, SIGTERM);
}

void Process::Kill() {
  if (!Running()) return;
  ::kill(pid_, SIGKILL);
  WaitExit(absl::Seconds(5));
}

void Process::Stop(absl::Duration grace) {
  if (!Running()) return;
  ::kill(pid_, SIGTERM);
  if (WaitExit(grace).has_value()) return;
  std::fprintf(stderr, "%s did not stop within %s of SIGTERM: SIGKILL\n", log_.c_str(),
               Seconds(grace).c_str());
  ::kill(pid_, SIGKILL);
  WaitExit(absl::Seconds(5));
}

// Runs `command` with bash (at most `bound`); its output (stdout and
// stderr) and wait status (-1: killed at the bound).
std::string Shell(const std::string& command, int* status, absl::Duration bound) {
  char path[] = "/tmp/cachecar-sync-shell.XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) {
    *status = -1;
    return std::string("mkstemp: ") + std::strerror(errno);
  }
  ::close(fd);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  std::string out;
  {
    Process shell(path);
    shell.Spawn({"/bin/bash", "-c", command}, env);
    const std::optional<int> exited = shell.WaitExit(bound);
    *status = exited.value_or(-1);
    out = ReadFile(path);
  }
  ::unlink(path);
  return out;
}

// ---------------------------------------------------------------------------
// KafkaHarness.

const KafkaHarness& KafkaHarness::Get() {
  static const KafkaHarness* const harness = [] {
    auto* h = new KafkaHarness;
    const std::string env_path = RequireEnv("CACHECAR_TEST_KAFKA_ENV");
    h->sh_ = RequireEnv("CACHECAR_TEST_KAFKA_SH");
    h->dir_ = std::string(absl::StripSuffix(env_path, "/env"));
    for (absl::string_view line : absl::StrSplit(ReadFile(env_path), '\n')) {
      if (absl::ConsumePrefix(&line, "KAFKA_BOOTSTRAP=")) h->bootstrap_ = std::string(line);
    }
    if (h->bootstrap_.empty()) {
      std::fprintf(stderr, "%s has no KAFKA_BOOTSTRAP: did kafka.sh start fail?\n",
                   env_path.c_str());
      std::abort();
    }
    return h;
  }();
  return *harness;
}

void KafkaHarness::Run(const std::string& command, const std::vector<std::string>& args,
                       const std::string& input) const {
  char path[] = "/tmp/cachecar-sync-input.XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const bool written =
      ::write(fd, input.data(), input.size()) == static_cast<ssize_t>(input.size());
  ::close(fd);
  std::string line = absl::StrCat("bash ", ShellQuote(sh_), " ", command, " ", ShellQuote(dir_));
  for (const std::string& a : args) absl::StrAppend(&line, " ", ShellQuote(a));
  absl::StrAppend(&line, " <", path);
  int status = 0;
  const std::string out = written ? Shell(line, &status) : "cannot write the input file";
  ::unlink(path);
  ASSERT_TRUE(written && status == 0) << line << "\n" << out;
}

std::map<int, int> KafkaHarness::MessagesPerPartition(const std::string& topic) const {
  int status = 0;
  const std::string out = Shell(absl::StrCat("timeout 30 kcat -C -b ", bootstrap_, " -t ",
                                             ShellQuote(topic), " -o beginning -e -q -f '%p\\n'"),
                                &status);
  // kcat -e stops once every partition reached its end; on a slow
  // (sanitized, loaded) machine the relays' watermarks, published into
  // every partition, can keep it reading until the timeout (exit 124):
  // what it printed by then is still every partition's messages so far.
  const bool timed_out = WIFEXITED(status) && WEXITSTATUS(status) == 124;
  EXPECT_TRUE(status == 0 || (timed_out && !out.empty())) << status << "\n" << out;
  std::map<int, int> counts;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    int p = 0;
    if (absl::SimpleAtoi(line, &p)) ++counts[p];
  }
  return counts;
}

std::string ScrapeMetrics(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n = 0;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of one series (`name` or `name{labels}` exactly as exposed).
std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return std::nullopt;
}

// The partitions that have a cachecar_sync_lag_messages series.
std::set<int> LagPartitions(const std::string& text) {
  std::set<int> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "cachecar_sync_lag_messages{partition=\"")) continue;
    int p = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find('"')), &p)) out.insert(p);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Replica.

std::ostream& operator<<(std::ostream& os, const GetResult& r) {
  if (!r.ok()) return os << "error " << r.code << ": " << r.error;
  return os << "{found " << r.found << ", value '" << r.value << "', version " << r.version << ", "
            << v1::Source_Name(r.source) << "}";
}

bool Replica::WaitForPorts(absl::Duration bound) {
  const auto found = PollUntil(bound, [this] {
    if (!Running()) return true;
    const std::string log = ReadFile(log_path());
    return ParsePort(log, "serving on 127.0.0.1:", &port_) &&
           ParsePort(log, "metrics on http://127.0.0.1:", &metrics_port_);
  });
  if (!found.has_value() || port_ == 0 || metrics_port_ == 0) return false;
  channel_ =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
  cache_ = v1::Cache::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
  return true;
}

GetResult Replica::Get(const std::string& key, v1::Consistency consistency, uint64_t min_version) {
  v1::GetRequest req;
  req.set_key(key);
  req.set_consistency(consistency);
  req.set_min_version(min_version);
  v1::GetResponse resp;
  const grpc::Status s = Call(cache_.get(), &v1::Cache::Stub::Get, req, &resp);
  return GetResult{s.error_code(), s.error_message(), resp.found(),
                   resp.value(),   resp.version(),    resp.source()};
}

PutResult Replica::Put(const std::string& key, const std::string& value, uint64_t ttl_ms) {
  v1::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_ttl_ms(ttl_ms);
  v1::PutResponse resp;
  const grpc::Status s = Call(cache_.get(), &v1::Cache::Stub::Put, req, &resp);
  return PutResult{s.error_code(), s.error_message(), resp.version()};
}

PutResult Replica::Delete(const std::string& key) {
  v1::DeleteRequest req;
  req.set_key(key);
  v1::DeleteResponse resp;
  const grpc::Status s = Call(cache_.get(), &v1::Cache::Stub::Delete, req, &resp);
  return PutResult{s.error_code(), s.error_message(), resp.version()};
}

std::pair<grpc::Status, std::vector<uint64_t>> Replica::WriteBatch(
    const std::vector<std::pair<std::string, std::string>>& kv) {
  v1::WriteBatchRequest req;
  for (const auto& [k, v] : kv) {
    v1::BatchWrite* w = req.add_writes();
    w->set_key(k);
    w->set_value(v);
  }
  v1::WriteBatchResponse resp;
  const grpc::Status s = Call(cache_.get(), &v1::Cache::Stub::WriteBatch, req, &resp);
  std::vector<uint64_t> versions;
  for (const v1::BatchWriteResult& r : resp.results()) versions.push_back(r.version());
  return {s, versions};
}

bool Replica::Invalidate(const std::vector<std::string>& keys, bool broadcast, bool all) {
  v1::InvalidateRequest req;
  for (const std::string& k : keys) req.add_keys(k);
  req.set_broadcast(broadcast);
  req.set_all(all);
  v1::InvalidateResponse resp;
  return Call(cache_.get(), &v1::Cache::Stub::Invalidate, req, &resp).ok();
}

std::optional<HealthCheckResponse::ServingStatus> Replica::Health(const std::string& service) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  if (!Call(health_.get(), &grpc::health::v1::Health::Stub::Check, req, &resp, absl::Seconds(2))
           .ok()) {
    return std::nullopt;
  }
  return resp.status();
}

bool Replica::Ready() { return Health("readiness") == HealthCheckResponse::SERVING; }
bool Replica::SyncServing() {
  return Health("cachecar.v1.Cache/sync") == HealthCheckResponse::SERVING;
}
bool Replica::StoreServing() {
  return Health("cachecar.v1.Cache/store") == HealthCheckResponse::SERVING;
}

bool Replica::ParsePort(const std::string& log, const std::string& prefix, int* port) {
  const size_t at = log.find(prefix);
  if (at == std::string::npos) return false;
  size_t end = at + prefix.size();
  while (end < log.size() && absl::ascii_isdigit(static_cast<unsigned char>(log[end]))) ++end;
  return absl::SimpleAtoi(log.substr(at + prefix.size(), end - at - prefix.size()), port);
}

// ---------------------------------------------------------------------------
// ClusterTest.

void ClusterTest::SetUp() {
  binary_ = RequireEnv("CACHECAR_BIN");
  const PgHarness& pg = PgHarness::Get();
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  name_ = absl::AsciiStrToLower(info->name());
  db_ = absl::StrCat("sync_", name_);
  topic_ = absl::StrCat("sync-", name_, "-", ::getpid());
  prefix_ = absl::StrCat(name_, "/");
  char dir[] = "/tmp/cachecar-sync-test.XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  dir_ = dir;
  pg.CreateDatabase(db_);
  dsn_ = pg.Dsn(db_);
  Process migrate(absl::StrCat(dir_, "/migrate.log"));
  migrate.Spawn({binary_, "migrate", "--store=postgres", "--postgres-dsn=" + dsn_}, ChildEnv({}));
  const std::optional<int> status = migrate.WaitExit(absl::Seconds(60));
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "cachecar migrate failed:\n"
      << ReadFile(migrate.log_path());
  std::printf("test %s: database %s, topic %s, logs in %s\n", name_.c_str(), db_.c_str(),
              topic_.c_str(), dir_.c_str());
}

void ClusterTest::TearDown() {
  if (broker_paused_) BrokerResume();
  if (broker_down_) BrokerStart();
  if (pg_down_) PgStart();
  for (auto& r : replicas_) r->Terminate();  // all at once: each takes ~1.5 s
  for (auto& r : replicas_) r->Stop();
  if (HasFailure()) {
    for (auto& r : replicas_) {
      std::fprintf(stderr, "---- last lines of replica %s (%s)\n%s\n", r->name().c_str(),
                   r->log_path().c_str(), Tail(ReadFile(r->log_path()), 40).c_str());
    }
    std::fprintf(stderr, "logs kept in %s\n", dir_.c_str());
  } else if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::printf("test %s took %s\n", name_.c_str(), Seconds(watch_.Elapsed()).c_str());
}

std::vector<std::string> ClusterTest::ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "CACHECAR_")) env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

void ClusterTest::CreateTopic(int partitions) {
  KafkaHarness::Get().Run("create-topic", {topic_, std::to_string(partitions)});
}

void ClusterTest::Fault(bool* flag, bool faulty, const std::function<void()>& run) {
  if (faulty) *flag = true;
  run();
  if (!faulty) *flag = false;
}

namespace {
std::function<void()> Kafka(const char* command) {
  return [command] { KafkaHarness::Get().Run(command, {}); };
}
}  // namespace

void ClusterTest::BrokerStop() { Fault(&broker_down_, true, Kafka("broker-stop")); }
void ClusterTest::BrokerStart() { Fault(&broker_down_, false, Kafka("broker-start")); }
void ClusterTest::BrokerPause() { Fault(&broker_paused_, true, Kafka("broker-pause")); }
void ClusterTest::BrokerResume() { Fault(&broker_paused_, false, Kafka("broker-resume")); }
void ClusterTest::PgStop() {
  Fault(&pg_down_, true, [] { PgHarness::Get().StopServer(); });
}
void ClusterTest::PgStart() {
  Fault(&pg_down_, false, [] { PgHarness::Get().StartServer(); });
}

Replica& ClusterTest::StartReplica(const std::string& name, const ReplicaOptions& options) {
  Replica& r = SpawnReplica(name, options);
  WaitReady({&r});
  return r;
}

Replica& ClusterTest::SpawnReplica(const std::string& name, const ReplicaOptions& options) {
  auto r = std::make_unique<Replica>(name, absl::StrCat(dir_, "/", name, ".log"));
  std::vector<std::string> argv = {binary_,
                                   "serve",
                                   "--listen=127.0.0.1:0",
                                   "--metrics-listen=127.0.0.1:0",
                                   "--store=postgres",
                                   "--postgres-dsn=" + dsn_,
                                   "--postgres-pool-size=4",
                                   "--workers=4",
                                   "--kafka-brokers=" + KafkaHarness::Get().bootstrap(),
                                   "--sync-topic=" + topic_,
                                   "--replica-id=" + name,
                                   "--max-staleness=" + absl::FormatDuration(kMaxStaleness),
                                   "--stale-reads=bypass",
                                   "--outbox-relay-delay=500ms",
                                   "--shutdown-grace=1s",
                                   "--log-level=info"};
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  std::vector<std::string> env = options.env;
  const char* planted = std::getenv("CACHECAR_TEST_REPLICA_FAULT");
  if (planted != nullptr && *planted != '\0' && env.empty()) {
    env.push_back(absl::StrCat("CACHECAR_FAULT_POINT=", planted));
  }
  r->process().Spawn(argv, ChildEnv(env));
  Replica& ref = *r;
  replicas_.push_back(std::move(r));
  EXPECT_TRUE(ref.WaitForPorts(kStartBound)) << "replica " << name << " did not start listening:\n"
                                             << Tail(ReadFile(ref.log_path()), 30);
  return ref;
}

void ClusterTest::WaitReady(const std::vector<Replica*>& replicas) {
  for (Replica* r : replicas) {
    const auto took = PollUntil(
        kStartBound,
        [r] { return !r->Running() || (r->Ready() && r->StoreServing() && r->SyncServing()); },
        absl::Milliseconds(50));
    ASSERT_TRUE(took.has_value() && r->Running())
        << "replica " << r->name() << " did not become ready and in sync within "
        << absl::FormatDuration(kStartBound) << ":\n"
        << Tail(ReadFile(r->log_path()), 30);
  }
}

std::optional<std::pair<uint64_t, std::string>> ClusterTest::Stored(const std::string& key) {
  const std::string out = PgHarness::Get().Psql(
      db_, absl::StrCat("SELECT version || '|' || convert_from(value, 'UTF8') FROM "
                        "cachecar_entries WHERE namespace = 'default' AND key = '",
                        key, "'"));
  if (out.empty()) return std::nullopt;
  const size_t bar = out.find('|');
  uint64_t version = 0;
  if (bar == std::string::npos || !absl::SimpleAtoi(out.substr(0, bar), &version)) {
    ADD_FAILURE() << "unexpected psql output: " << out;
    return std::nullopt;
  }
  return std::make_pair(version, out.substr(bar + 1));
}

int ClusterTest::OutboxRows() {
  int rows = -1;
  const std::string out = PgHarness::Get().Psql(db_, "SELECT count(*) FROM cachecar_outbox");
  EXPECT_TRUE(absl::SimpleAtoi(out, &rows)) << out;
  return rows;
}

uint64_t ClusterTest::SqlUpdate(const std::string& key, const std::string& value) {
  const std::string out = PgHarness::Get().Psql(
      db_, absl::StrCat("UPDATE cachecar_entries SET value = convert_to('", value,
                        "', 'UTF8') WHERE namespace = 'default' AND key = '", key,
                        "' RETURNING version"));
  uint64_t version = 0;
  EXPECT_TRUE(absl::SimpleAtoi(out, &version)) << out;
  return version;
}

double ClusterTest::Sum(const std::vector<Replica*>& replicas, const std::string& series) {
  double total = 0;
  for (Replica* r : replicas) total += r->Metric(series).value_or(0);
  return total;
}

std::optional<absl::Duration> ClusterTest::WaitForVersion(Replica& r, const std::string& key,
                                                          uint64_t version,
                                                          const std::string& value,
                                                          std::optional<v1::Source> source) {
  GetResult last;
  const auto took = PollUntil(kPropagationBound, [&] {
    last = r.Get(key);
    return last.ok() && last.version >= version;
  });
  EXPECT_TRUE(took.has_value()) << "replica " << r.name()
                                << " did not return version >= " << version << " of " << key
                                << " within " << absl::FormatDuration(kPropagationBound)
                                << "; last: " << last;
  if (took.has_value()) {
    EXPECT_EQ(last.version, version) << r.name() << " " << key;
    EXPECT_TRUE(last.found) << r.name() << " " << key << ": " << last;
    EXPECT_EQ(last.value, value) << r.name() << " " << key;
    if (source.has_value()) {
      EXPECT_EQ(last.source, *source) << r.name() << " " << key << ": " << last;
    }
  }
  return took;
}

std::optional<absl::Duration> ClusterTest::WaitForCached(Replica& r, const std::string& key,
                                                         uint64_t version,
                                                         const std::string& value) {
  GetResult last;
  const auto took = PollUntil(kPropagationBound, [&] {
    last = r.Get(key);
    return last.ok() && last.version >= version && last.source == v1::SOURCE_CACHE;
  });
  EXPECT_TRUE(took.has_value()) << "replica " << r.name() << " did not serve version >= " << version
                                << " of " << key << " from its cache within "
                                << absl::FormatDuration(kPropagationBound) << "; last: " << last;
  if (took.has_value()) {
    EXPECT_EQ(last.value, value) << r.name() << ": " << last;
  }
  return took;
}

void ClusterTest::CacheKey(Replica& r, const std::string& key, uint64_t version,
                           const std::string& value) {
  ASSERT_TRUE(WaitForVersion(r, key, version, value, std::nullopt).has_value());
  const GetResult again = r.Get(key);
  ASSERT_EQ(again.source, v1::SOURCE_CACHE) << r.name() << ": " << again;
  ASSERT_EQ(again.version, version) << r.name() << ": " << again;
}

void ClusterTest::CacheAbsent(Replica& r, const std::string& key) {
  const GetResult first = r.Get(key);
  ASSERT_TRUE(first.ok() && !first.found) << r.name() << ": " << first;
  const GetResult again = r.Get(key);
  ASSERT_EQ(again.source, v1::SOURCE_CACHE) << r.name() << ": " << again;
  ASSERT_FALSE(again.found) << r.name() << ": " << again;
}

void ClusterTest::ExpectPropagates(Replica& writer, Replica& reader, const std::string& key,
                                   const std::string& value) {
  CacheAbsent(reader, key);
  ASSERT_FALSE(HasFatalFailure());
  const PutResult put = writer.Put(key, value);
  ASSERT_TRUE(put.ok()) << put.error;
  Stopwatch since_put;
  if (WaitForVersion(reader, key, put.version, value).has_value()) {
    PrintDelay(absl::StrCat("Put on ", writer.name(), " -> cached on ", reader.name()),
               since_put.Elapsed());
  }
}

}  // namespace cachecar::testing
