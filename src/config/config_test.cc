#include "config/config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "config/options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::config {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;
using Args = std::vector<std::string>;

// A YAML file under the test temp dir, removed at the end of the test.
class TempYaml {
 public:
  explicit TempYaml(const std::string& text) {
    static int counter = 0;
    path_ = absl::StrCat(::testing::TempDir(), "/cachecar_config_test_", ::getpid(), "_", counter++,
                         ".yaml");
    std::ofstream(path_) << text;
  }
  ~TempYaml() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The error text of a load that must fail.
std::string LoadError(const Args& args, const Env& env = {}) {
  absl::StatusOr<LoadResult> result = LoadConfig(args, env);
  EXPECT_FALSE(result.ok()) << "loaded: " << DescribeConfig(result->config);
  if (result.ok()) return "";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(result.status().message());
}

Config Load(const Args& args, const Env& env = {}) {
  absl::StatusOr<LoadResult> result = LoadConfig(args, env);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->config : Config{};
}

std::vector<std::string> NamespaceNames(const Config& c) {
  std::vector<std::string> names;
  for (const NamespaceConfig& ns : c.namespaces) names.push_back(ns.name);
  return names;
}

// Every option field (not config_file/sources, which say where values came
// from).
void ExpectSameOptions(const Config& a, const Config& b) {
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.max_bytes, b.max_bytes);
  EXPECT_EQ(a.shards, b.shards);
  EXPECT_EQ(a.eviction, b.eviction);
  EXPECT_EQ(a.max_key_bytes, b.max_key_bytes);
  EXPECT_EQ(a.max_value_bytes, b.max_value_bytes);
  EXPECT_EQ(a.max_message_bytes, b.max_message_bytes);
  EXPECT_EQ(a.max_batch_keys, b.max_batch_keys);
  EXPECT_EQ(a.polling_threads, b.polling_threads);
  EXPECT_EQ(a.workers, b.workers);
  EXPECT_EQ(a.worker_queue, b.worker_queue);
  EXPECT_EQ(a.store, b.store);
  EXPECT_EQ(a.shutdown_grace, b.shutdown_grace);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.log_format, b.log_format);
  ASSERT_EQ(a.namespaces.size(), b.namespaces.size());
  for (size_t i = 0; i < a.namespaces.size(); ++i) {
    EXPECT_EQ(a.namespaces[i].name, b.namespaces[i].name);
    EXPECT_EQ(a.namespaces[i].ttl, b.namespaces[i].ttl);
    EXPECT_EQ(a.namespaces[i].max_bytes_share, b.namespaces[i].max_bytes_share);
  }
}

// --- defaults ---------------------------------------------------------------

TEST(ConfigDefaults, EmptyInputGivesDefaultsAndDefaultNamespace) {
  const Config c = Load({}, {});
  EXPECT_THAT(c.listen, ElementsAre("127.0.0.1:50051"));
  EXPECT_EQ(c.max_bytes, 256u << 20);
  EXPECT_EQ(c.shards, 16u);
  EXPECT_EQ(c.eviction, "s3fifo");
  EXPECT_EQ(c.max_key_bytes, 1024u);
  EXPECT_EQ(c.max_value_bytes, 1u << 20);
  EXPECT_EQ(c.max_message_bytes, 4u << 20);
  EXPECT_EQ(c.max_batch_keys, 1000u);
  EXPECT_EQ(c.polling_threads, 1u);
  EXPECT_EQ(c.workers, 8u);
  EXPECT_EQ(c.worker_queue, 10000u);
  EXPECT_EQ(c.store, "memory");
  EXPECT_EQ(c.shutdown_grace, absl::Seconds(10));
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "text");
  EXPECT_THAT(NamespaceNames(c), ElementsAre("default"));
  EXPECT_EQ(c.config_file, "");
  for (const Option& option : Options()) {
    EXPECT_EQ(c.sources.at(std::string(option.name)), "default");
  }
}

TEST(ConfigDefaults, StructDefaultsAreValid) {
  Config c;
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_THAT(NamespaceNames(c), ElementsAre("default"));
}

// The default each option shows in --help, fed back in, changes nothing.
TEST(ConfigDefaults, HelpDefaultsRoundTrip) {
  const Config defaults;
  Args args;
  for (const Option& option : Options()) {
    const std::string text = option.show(defaults);
    if (!text.empty()) args.push_back(absl::StrCat(option.flag, "=", text));
  }
  Config expected;
  ASSERT_TRUE(Validate(expected).ok());
  ExpectSameOptions(Load(args), expected);
}

// --- precedence -------------------------------------------------------------

TEST(ConfigPrecedence, FlagBeatsEnvBeatsFileBeatsDefault) {
  TempYaml file("max_bytes: 64MiB\nshards: 4\nworkers: 2\n");
  const Env env = {
      {"CACHECAR_CONFIG", file.path()}, {"CACHECAR_MAX_BYTES", "128MiB"}, {"CACHECAR_SHARDS", "8"}};
  const Config c = Load({"--max-bytes=32MiB"}, env);
  EXPECT_EQ(c.max_bytes, 32u << 20);
  EXPECT_EQ(c.shards, 8u);
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.max_batch_keys, 1000u);
  EXPECT_EQ(c.sources.at("max_bytes"), "--max-bytes");
  EXPECT_EQ(c.sources.at("shards"), "CACHECAR_SHARDS");
  EXPECT_EQ(c.sources.at("workers"), file.path() + ":3");
  EXPECT_EQ(c.sources.at("max_batch_keys"), "default");
  EXPECT_EQ(c.config_file, file.path());
}

TEST(ConfigPrecedence, HigherSourceReplacesLists) {
  TempYaml file("listen: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n");
  EXPECT_THAT(Load({"--config", file.path()}).listen, ElementsAre("127.0.0.1:1", "127.0.0.1:2"));
  const Env env = {{"CACHECAR_LISTEN", "127.0.0.1:3, 127.0.0.1:4"}};
  EXPECT_THAT(Load({"--config", file.path()}, env).listen,
              ElementsAre("127.0.0.1:3", "127.0.0.1:4"));
  EXPECT_THAT(Load({"--config", file.path(), "--listen", "127.0.0.1:5",
                    "--listen=127.0.0.1:6,unix:///tmp/c.sock"},
                   env)
                  .listen,
              ElementsAre("127.0.0.1:5", "127.0.0.1:6", "unix:///tmp/c.sock"));
}

TEST(ConfigPrecedence, ConfigFlagBeatsConfigEnv) {
  TempYaml from_flag("workers: 3\n");
  TempYaml from_env("workers: 5\n");
  const Config c = Load({"--config=" + from_flag.path()}, {{"CACHECAR_CONFIG", from_env.path()}});
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.config_file, from_flag.path());
}

TEST(ConfigFlags, BothFlagForms) {
  const Config c = Load(
      {"--workers", "3", "--worker-queue=7", "--shutdown-grace", "1m30s", "--log-format=json"});
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.worker_queue, 7u);
  EXPECT_EQ(c.shutdown_grace, absl::Seconds(90));
  EXPECT_EQ(c.log_format, "json");
}

TEST(ConfigFlags, LastScalarFlagWins) {
  EXPECT_EQ(Load({"--workers=2", "--workers=4"}).workers, 4u);
}

TEST(ConfigFlags, MissingValue) {
  EXPECT_THAT(LoadError({"--workers"}),
              AllOf(HasSubstr("workers (from --workers)"), HasSubstr("needs a value")));
  EXPECT_THAT(LoadError({"--workers", "--shards=2"}), HasSubstr("needs a value"));
}

TEST(ConfigFlags, HelpAndVersionShortCircuit) {
  const Env bad_env = {{"CACHECAR_NOPE", "1"}};
  absl::StatusOr<LoadResult> help = LoadConfig({"--max-bytes=1", "-h"}, bad_env);
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_TRUE(help->help);
  absl::StatusOr<LoadResult> version = LoadConfig({"--version"}, {});
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(version->version);
  EXPECT_FALSE(version->help);
}

TEST(ConfigFlags, PositionalArgumentRejected) {
  EXPECT_THAT(LoadError({"--workers=2", "serve"}),
              AllOf(HasSubstr("unexpected argument \"serve\""), HasSubstr("see --help")));
}

TEST(ConfigEnv, EmptyVariableCountsAsUnset) {
  EXPECT_EQ(Load({}, {{"CACHECAR_WORKERS", ""}}).workers, 8u);
}

TEST(ConfigEnv, OtherVariablesIgnored) {
  const Env env = {{"PATH", "/bin"},
                   {"HOME", "/root"},
                   {"cachecar_workers", "x"},
                   // What Kubernetes injects for a Service named cachecar.
                   {"CACHECAR_PORT", "tcp://10.0.0.1:50051"},
                   {"CACHECAR_PORT_50051_TCP_ADDR", "10.0.0.1"},
                   {"CACHECAR_SERVICE_HOST", "10.0.0.1"},
                   {"CACHECAR_SERVICE_PORT_GRPC", "50051"},
                   // ... and for one named cachecar-injector.
                   {"CACHECAR_INJECTOR_SERVICE_HOST", "10.0.0.2"},
                   {"CACHECAR_INJECTOR_SERVICE_PORT", "443"},
                   {"CACHECAR_INJECTOR_PORT", "tcp://10.0.0.2:443"},
                   {"CACHECAR_INJECTOR_PORT_443_TCP", "tcp://10.0.0.2:443"},
                   {"CACHECAR_INJECTOR_PORT_443_TCP_PROTO", "tcp"}};
  EXPECT_EQ(Load({}, env).workers, 8u);
}

TEST(ConfigEnv, LookalikesOfServiceLinksAreStillTypos) {
  EXPECT_THAT(LoadError({}, {{"CACHECAR_WORKERZ", "3"}}),
              HasSubstr("unknown environment variable CACHECAR_WORKERZ"));
  EXPECT_THAT(LoadError({}, {{"CACHECAR_PORT_X_TCP", "3"}}),
              HasSubstr("unknown environment variable CACHECAR_PORT_X_TCP"));
}

// --- unknown names ----------------------------------------------------------

TEST(ConfigUnknown, UnknownFlag) {
  EXPECT_THAT(LoadError({"--max-byte=1GiB"}),
              AllOf(HasSubstr("unknown flag --max-byte "), HasSubstr("did you mean --max-bytes?"),
                    HasSubstr("see --help")));
  EXPECT_THAT(LoadError({"--frobnicate"}), AllOf(HasSubstr("unknown flag --frobnicate; see --help"),
                                                 Not(HasSubstr("did you mean"))));
  EXPECT_THAT(LoadError({"-w", "3"}), HasSubstr("unknown flag -w"));
}

TEST(ConfigUnknown, UnknownYamlKeyNamesKeyAndFile) {
  TempYaml file("workers: 2\nmax_byte: 1GiB\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr("unknown key \"max_byte\""), HasSubstr(file.path() + ":2"),
                    HasSubstr("did you mean max_bytes?")));
}

TEST(ConfigUnknown, ConfigIsNotAYamlKey) {
  TempYaml file("config: /other.yaml\n");
  EXPECT_THAT(LoadError({"--config", file.path()}), HasSubstr("unknown key \"config\""));
}

TEST(ConfigUnknown, UnknownEnvVariable) {
  EXPECT_THAT(LoadError({}, {{"CACHECAR_WORKER", "3"}}),
              AllOf(HasSubstr("unknown environment variable CACHECAR_WORKER"),
                    HasSubstr("did you mean CACHECAR_WORKERS?")));
}

TEST(ConfigUnknown, UnknownNamespaceKey) {
  TempYaml file("namespaces:\n  - name: a\n    tll: 5s\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr("namespaces[0]"), HasSubstr("\"tll\""),
                    HasSubstr("did you mean ttl?"), HasSubstr(file.path() + ":3")));
}

// --- parse errors name field, source and form -------------------------------

TEST(ConfigParseErrors, FromFlag) {
  EXPECT_EQ(LoadError({"--max-bytes=lots"}),
            "config: max_bytes (from --max-bytes): expected a size such as "
            "1048576, 64KiB, 256MiB or 1GiB, got \"lots\"");
  EXPECT_THAT(LoadError({"--workers", "-3"}),
              AllOf(HasSubstr("workers (from --workers)"), HasSubstr("expected a whole number")));
  EXPECT_THAT(
      LoadError({"--shutdown-grace=10"}),
      AllOf(HasSubstr("shutdown_grace (from --shutdown-grace)"), HasSubstr("expected a duration")));
}

TEST(ConfigParseErrors, FromEnv) {
  EXPECT_THAT(LoadError({}, {{"CACHECAR_SHARDS", "many"}}),
              AllOf(HasSubstr("config: shards (from CACHECAR_SHARDS)"),
                    HasSubstr("expected a whole number, got \"many\"")));
  EXPECT_THAT(LoadError({}, {{"CACHECAR_MAX_VALUE_BYTES", "5GiB"}}),
              AllOf(HasSubstr("max_value_bytes (from "
                              "CACHECAR_MAX_VALUE_BYTES)"),
                    HasSubstr("below 4GiB")));
}

TEST(ConfigParseErrors, FromFileWithLine) {
  TempYaml file("# comment\nworkers: 4\nmax_bytes: lots\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr(absl::StrCat("config: max_bytes (from ", file.path(), ":3)")),
                    HasSubstr("expected a size such as"), HasSubstr("got \"lots\"")));
}

TEST(ConfigParseErrors, WrongYamlShape) {
  TempYaml list("shards: [1, 2]\n");
  EXPECT_THAT(LoadError({"--config", list.path()}),
              AllOf(HasSubstr("shards (from " + list.path() + ":1)"),
                    HasSubstr("expected a whole number, got a list")));
  TempYaml empty("workers:\n");
  EXPECT_THAT(LoadError({"--config", empty.path()}),
              AllOf(HasSubstr("workers"), HasSubstr("got no value")));
  TempYaml map_listen("listen: {a: b}\n");
  EXPECT_THAT(LoadError({"--config", map_listen.path()}),
              AllOf(HasSubstr("listen"), HasSubstr("got a map")));
  TempYaml top("- a\n- b\n");
  EXPECT_THAT(LoadError({"--config", top.path()}), HasSubstr("expected a map of option names"));
}

TEST(ConfigParseErrors, BadNamespaceSpec) {
  EXPECT_THAT(LoadError({"--namespace=a:soon"}), AllOf(HasSubstr("namespaces (from --namespace)"),
                                                       HasSubstr("ttl: expected a duration")));
  EXPECT_THAT(LoadError({}, {{"CACHECAR_NAMESPACES", "a:1s:half"}}),
              AllOf(HasSubstr("namespaces (from CACHECAR_NAMESPACES)"),
                    HasSubstr("share: expected a fraction")));
  EXPECT_THAT(LoadError({"--namespace=a:1s:0.5:x"}), HasSubstr("expected name[:ttl[:share]]"));
  TempYaml file("namespaces:\n  - name: a\n    ttl: forever\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr("namespaces[0].ttl (from " + file.path() + ":3)"),
                    HasSubstr("expected a duration")));
}

TEST(ConfigFile, MissingFileNamesPathAndSource) {
  EXPECT_THAT(LoadError({}, {{"CACHECAR_CONFIG", "/nonexistent/c.yaml"}}),
              AllOf(HasSubstr("cannot read config file "
                              "\"/nonexistent/c.yaml\""),
                    HasSubstr("(from CACHECAR_CONFIG)"), HasSubstr("No such file")));
}

TEST(ConfigFile, SyntaxErrorNamesLine) {
  TempYaml file("workers: 2\nlisten: [unclosed\n");
  EXPECT_THAT(
      LoadError({"--config", file.path()}),
      AllOf(HasSubstr("cannot parse config file " + file.path() + ":"), Not(HasSubstr(":0:"))));
}

TEST(ConfigFile, DuplicateKeyRejected) {
  TempYaml file("workers: 2\nworkers: 3\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr("workers (from " + file.path() + ":2)"), HasSubstr("appears twice")));
}

TEST(ConfigFile, EmptyFileSetsNothing) {
  TempYaml file("# nothing here\n");
  ExpectSameOptions(Load({"--config", file.path()}), Load({}));
}

// Issue #17: --config=/dev/zero was read without end.
TEST(ConfigFile, AnEndlessFileIsRefused) {
  EXPECT_THAT(LoadError({"--config=/dev/zero"}),
              AllOf(HasSubstr("cannot read config file \"/dev/zero\""),
                    HasSubstr("over 1 MiB, too large for a config file")));
}

// Issue #17: later documents of a multi-document file were silently ignored.
TEST(ConfigFile, ASecondDocumentIsAnError) {
  TempYaml file("workers: 2\n---\nmax_bytes: 64MiB\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr(file.path() + ":3 has more than one YAML document"),
                    HasSubstr("put every option in one")));
  TempYaml trailing("workers: 2\n---\n");  // an empty second document is harmless
  EXPECT_EQ(Load({"--config", trailing.path()}).workers, 2u);
  TempYaml leading("---\nworkers: 3\n");
  EXPECT_EQ(Load({"--config", leading.path()}).workers, 3u);
}

// Issue #17: a file nested 10,000 deep reported only "bad file".
TEST(ConfigFile, DeepNestingSaysSo) {
  TempYaml file("listen: " + std::string(10000, '[') + std::string(10000, ']') + "\n");
  EXPECT_THAT(LoadError({"--config", file.path()}),
              AllOf(HasSubstr("cannot parse config file " + file.path()),
                    HasSubstr("nested more than 32 deep (at line 1)")));
  TempYaml laughs(
      "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
      "e: [*d, *d, *d, *d, *d, *d, *d, *d]\n");
  EXPECT_THAT(LoadError({"--config", laughs.path()}), HasSubstr("aliases repeat more than"));
}

TEST(ConfigFile, ListenAsString) {
  TempYaml file("listen: 127.0.0.1:7000,[::1]:7001\n");
  EXPECT_THAT(Load({"--config", file.path()}).listen, ElementsAre("127.0.0.1:7000", "[::1]:7001"));
}

// --- value parsing ----------------------------------------------------------

TEST(ParseDurationTest, Accepted) {
  EXPECT_EQ(*ParseDuration("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseDuration("1h"), absl::Hours(1));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseDuration(" 0 "), absl::ZeroDuration());
}

TEST(ParseDurationTest, Rejected) {
  for (const char* text : {"", "10", "-1s", "inf", "10 s", "s", "1d", "ten"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(text);
    EXPECT_FALSE(d.ok()) << text;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr("expected a duration")) << text;
  }
}

TEST(ParseBytesTest, Accepted) {
  EXPECT_EQ(*ParseBytes("1048576"), 1048576u);
  EXPECT_EQ(*ParseBytes("0"), 0u);
  EXPECT_EQ(*ParseBytes("12B"), 12u);
  EXPECT_EQ(*ParseBytes("64KiB"), 64u << 10);
  EXPECT_EQ(*ParseBytes("64KB"), 64u << 10);
  EXPECT_EQ(*ParseBytes("256MiB"), 256u << 20);
  EXPECT_EQ(*ParseBytes("256mb"), 256u << 20);
  EXPECT_EQ(*ParseBytes("512Mi"), 512u << 20);
  EXPECT_EQ(*ParseBytes("1GiB"), 1u << 30);
  EXPECT_EQ(*ParseBytes("1 GB"), 1u << 30);
  EXPECT_EQ(*ParseBytes("2TiB"), 2ull << 40);
}

TEST(ParseBytesTest, Rejected) {
  for (const char* text : {"", "lots", "-1", "1.5GiB", "1PiB", "MiB", "0x10", "12 34"}) {
    EXPECT_FALSE(ParseBytes(text).ok()) << text;
  }
  EXPECT_THAT(std::string(ParseBytes("99999999999TiB").status().message()), HasSubstr("too large"));
}

TEST(FormatBytesTest, PicksLargestExactUnit) {
  EXPECT_EQ(FormatBytes(0), "0");
  EXPECT_EQ(FormatBytes(12), "12");
  EXPECT_EQ(FormatBytes(1024), "1KiB");
  EXPECT_EQ(FormatBytes(1536), "1536");
  EXPECT_EQ(FormatBytes(256u << 20), "256MiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3GiB");
}

// --- namespaces -------------------------------------------------------------

TEST(ConfigNamespaces, FromYamlMapsAndStrings) {
  TempYaml file(R"(namespaces:
  - name: sessions
    ttl: 30m
    max_bytes_share: 0.25
  - {name: users, ttl: 10m}
  - feeds:1s:0.5
)");
  const Config c = Load({"--config", file.path()});
  ASSERT_THAT(NamespaceNames(c), ElementsAre("sessions", "users", "feeds", "default"));
  EXPECT_EQ(c.namespaces[0].ttl, absl::Minutes(30));
  EXPECT_EQ(c.namespaces[0].max_bytes_share, 0.25);
  EXPECT_EQ(c.namespaces[1].ttl, absl::Minutes(10));
  EXPECT_EQ(c.namespaces[1].max_bytes_share, 0);
  EXPECT_EQ(c.namespaces[2].ttl, absl::Seconds(1));
  EXPECT_EQ(c.namespaces[2].max_bytes_share, 0.5);
  EXPECT_EQ(c.namespaces[3].ttl, absl::ZeroDuration());
}

TEST(ConfigNamespaces, NegativeTtlFromYaml) {
  TempYaml file(R"(namespaces:
  - {name: a, ttl: 10m, negative_ttl: 5s}
  - {name: b, ttl: 10m, negative_ttl: 0s}
  - {name: c, ttl: 10m}
)");
  const Config c = Load({"--config", file.path()});
  ASSERT_TRUE(c.namespaces[0].negative_ttl.has_value());
  EXPECT_EQ(*c.namespaces[0].negative_ttl, absl::Seconds(5));
  ASSERT_TRUE(c.namespaces[1].negative_ttl.has_value());
  EXPECT_EQ(*c.namespaces[1].negative_ttl, absl::ZeroDuration());
  EXPECT_FALSE(c.namespaces[2].negative_ttl.has_value()) << "unset: the namespace's ttl";
  TempYaml bad("namespaces:\n  - {name: a, negative_ttl: -1s}\n");
  EXPECT_THAT(LoadError({"--config", bad.path()}),
              AllOf(HasSubstr("namespaces[0].negative_ttl"), HasSubstr("expected a duration")));
}

TEST(ConfigNamespaces, FromFlags) {
  const Config c = Load({"--namespace", "a:10s:0.5", "--namespace=b", "--namespace=c::0.25,d:1m"});
  ASSERT_THAT(NamespaceNames(c), ElementsAre("a", "b", "c", "d", "default"));
  EXPECT_EQ(c.namespaces[0].ttl, absl::Seconds(10));
  EXPECT_EQ(c.namespaces[0].max_bytes_share, 0.5);
  EXPECT_EQ(c.namespaces[2].ttl, absl::ZeroDuration());
  EXPECT_EQ(c.namespaces[2].max_bytes_share, 0.25);
  EXPECT_EQ(c.namespaces[3].ttl, absl::Minutes(1));
}

TEST(ConfigNamespaces, FromEnv) {
  const Config c = Load({}, {{"CACHECAR_NAMESPACES", "a:10s:0.5,b"}});
  ASSERT_THAT(NamespaceNames(c), ElementsAre("a", "b", "default"));
  EXPECT_EQ(c.namespaces[0].ttl, absl::Seconds(10));
  EXPECT_EQ(c.namespaces[0].max_bytes_share, 0.5);
  EXPECT_EQ(c.namespaces[1].ttl, absl::ZeroDuration());
}

TEST(ConfigNamespaces, DeclaredDefaultKeptOnce) {
  const Config c = Load({"--namespace=default:5s", "--namespace=x"});
  ASSERT_THAT(NamespaceNames(c), ElementsAre("default", "x"));
  EXPECT_EQ(c.namespaces[0].ttl, absl::Seconds(5));
}

TEST(ConfigNamespaces, ShareSumOverOneRejected) {
  EXPECT_THAT(LoadError({"--namespace=a::0.6", "--namespace=b::0.5"}),
              AllOf(HasSubstr("namespaces (from --namespace)"), HasSubstr("add up to 1.1")));
  // Exactly 1 (with floating-point noise) is fine.
  Load({"--namespace=a::0.1,b::0.2,c::0.7"});
}

TEST(ConfigNamespaces, BadNamesAndShares) {
  EXPECT_THAT(LoadError({"--namespace=a/b"}), HasSubstr("namespace \"a/b\": a name is"));
  EXPECT_THAT(LoadError({"--namespace", std::string(65, 'n')}), HasSubstr("a name is 1 to 64"));
  EXPECT_THAT(LoadError({"--namespace=a,a"}), HasSubstr("namespace \"a\": declared twice"));
  EXPECT_THAT(LoadError({"--namespace=a::1.5"}),
              HasSubstr("max_bytes_share must be in (0, 1], got 1.5"));
  EXPECT_THAT(LoadError({"--namespace=a::-0.5"}),
              HasSubstr("max_bytes_share must be in (0, 1], got -0.5"));
  TempYaml file("namespaces:\n  - ttl: 5s\n");
  EXPECT_THAT(LoadError({"--config", file.path()}), HasSubstr("a namespace needs a name"));
}

// Issue #17: `max_bytes_share: 0` read as unset (the namespace shared the rest).
TEST(ConfigNamespaces, AZeroShareIsRefusedNotUnset) {
  TempYaml file("namespaces:\n  - {name: a, max_bytes_share: 0}\n");
  EXPECT_THAT(
      LoadError({"--config", file.path()}),
      AllOf(HasSubstr("namespaces[0].max_bytes_share"), HasSubstr("must be in (0, 1], got 0")));
  EXPECT_THAT(LoadError({"--namespace=a::0"}), HasSubstr("must be in (0, 1], got 0"));
  EXPECT_THAT(LoadError({"--namespace=a::0.0"}), HasSubstr("must be in (0, 1], got 0"));
  Load({"--namespace=a:5s"});  // left out: shares the rest
}

// --- validation -------------------------------------------------------------

TEST(ConfigValidate, ExampleMessageShape) {
  EXPECT_EQ(LoadError({}, {{"CACHECAR_MAX_BYTES", "12"}}),
            "config: max_bytes (from CACHECAR_MAX_BYTES): must be at least "
            "1MiB, got 12");
}

struct BadValue {
  Args args;
  std::string expected;
};

TEST(ConfigValidate, RangesNameTheFieldAndSource) {
  const std::vector<BadValue> cases = {
      {{"--shards=12"},
       "shards (from --shards): must be a power of two from 1 to 1024, got "
       "12"},
      {{"--shards=0"}, "shards (from --shards): must be a power of two"},
      {{"--shards=2048"}, "shards (from --shards): must be a power of two"},
      {{"--eviction=fifo"}, "eviction (from --eviction): must be s3fifo or lru, got \"fifo\""},
      {{"--max-key-bytes=0"},
       "max_key_bytes (from --max-key-bytes): must be from 1 to 64KiB, got 0"},
      {{"--max-key-bytes=65537"}, "max_key_bytes (from --max-key-bytes): must be from 1 to 64KiB"},
      {{"--max-value-bytes=65MiB", "--max-message-bytes=70MiB"},
       "max_value_bytes (from --max-value-bytes): must be from 1 to 64MiB, "
       "got 65MiB"},
      {{"--max-value-bytes=4MiB"},
       "max_message_bytes (from default): must be at least max_key_bytes + "
       "max_value_bytes + 4096 = 4199424 so the largest Put fits, got 4MiB"},
      {{"--max-message-bytes=3GiB"},
       "max_message_bytes (from --max-message-bytes): must be from 0 to"},
      {{"--max-batch-keys=0"},
       "max_batch_keys (from --max-batch-keys): must be from 1 to 100000, "
       "got 0"},
      {{"--max-batch-keys=100001"},
       "max_batch_keys (from --max-batch-keys): must be from 1 to 100000"},
      {{"--polling-threads=0"},
       "polling_threads (from --polling-threads): must be from 1 to 64, got 0"},
      {{"--polling-threads=65"}, "polling_threads (from --polling-threads): must be from 1 to 64"},
      {{"--workers=0"}, "workers (from --workers): must be from 1 to 1024, got 0"},
      {{"--workers=1025"}, "workers (from --workers): must be from 1 to 1024"},
      {{"--worker-queue=0"}, "worker_queue (from --worker-queue): must be at least 1, got 0"},
      {{"--store=redis"}, "store (from --store): must be memory or postgres, got \"redis\""},
      {{"--store=postgres"}, "postgres_dsn (from default): store is postgres but no DSN is set"},
      {{"--postgres-pool-size=0"},
       "postgres_pool_size (from --postgres-pool-size): must be from 1 to 1024"},
      {{"--postgres-query-timeout=1ms"},
       "postgres_query_timeout (from --postgres-query-timeout): must be from 10ms to 10m"},
      {{"--postgres-table=users;drop"},
       "postgres_table (from --postgres-table): \"users;drop\" is not a plain SQL name"},
      {{"--migrate=maybe"}, "migrate (from --migrate): expected true or false, got \"maybe\""},
      {{"--outbox-relays=0"}, "outbox_relays (from --outbox-relays): must be from 1 to 16, got 0"},
      {{"--outbox-relays=17"}, "outbox_relays (from --outbox-relays): must be from 1 to 16"},
      {{"--shutdown-grace=11m"},
       "shutdown_grace (from --shutdown-grace): must be from 0 to 10m, got "
       "11m"},
      {{"--log-level=verbose"},
       "log_level (from --log-level): must be trace, debug, info, warning, "
       "error, critical or off, got \"verbose\""},
      {{"--log-format=xml"}, "log_format (from --log-format): must be text or json, got \"xml\""},
  };
  for (const BadValue& c : cases) {
    EXPECT_THAT(LoadError(c.args), HasSubstr("config: " + c.expected))
        << absl::StrJoin(c.args, " ");
  }
}

TEST(ConfigValidate, BoundaryValuesAccepted) {
  const Config c = Load({"--max-bytes=1MiB", "--shards=1024", "--eviction=lru",
                         "--max-key-bytes=64KiB", "--max-value-bytes=64MiB",
                         "--max-message-bytes=" + std::to_string((64u << 20) + (64u << 10) + 4096),
                         "--max-batch-keys=100000", "--workers=1024", "--worker-queue=1",
                         "--shutdown-grace=10m", "--log-level=off", "--shutdown-grace=0"});
  EXPECT_EQ(c.shards, 1024u);
  EXPECT_EQ(c.shutdown_grace, absl::ZeroDuration());
}

TEST(ConfigValidate, ListenAddresses) {
  for (const char* good : {"127.0.0.1:0", "0.0.0.0:65535", "localhost:50051", "[::]:50051",
                           "[::1]:1", "unix:///run/c.sock", "unix:/run/c.sock"}) {
    Load({"--listen", good});
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"127.0.0.1", "must be host:port"},
      {"127.0.0.1:65536", "port must be 0 to 65535"},
      {"127.0.0.1:http", "port must be 0 to 65535"},
      {"127.0.0.1:", "port must be 0 to 65535"},
      {":50051", "needs a host"},
      {"::1:50051", "IPv6 address needs brackets"},
      {"[::1]50051", "must be [v6]:port"},
      {"unix://run/c.sock", "absolute path"},
      {"unix:run/c.sock", "absolute path"},
      {"unix:///", "absolute path"},
      {"unix:///" + std::string(120, 'p'), "the limit is 107"},
      {"dns:///host:1", "must be host:port, [v6]:port or unix:///abs/path"},
  };
  for (const auto& [address, reason] : bad) {
    EXPECT_THAT(LoadError({"--listen", address}),
                AllOf(HasSubstr("config: listen (from --listen): \"" + address.substr(0, 20)),
                      HasSubstr(reason)))
        << address;
  }
  EXPECT_THAT(LoadError({"--listen=127.0.0.1:1,127.0.0.1:1"}), HasSubstr("listed twice"));
  // Issue #17: such hosts were widened (256.0.0.0 bound 0.0.0.0) instead of refused.
  EXPECT_THAT(LoadError({"--listen=256.0.0.0:1"}),
              HasSubstr("\"256.0.0.0\" is not an IPv4 address"));
  EXPECT_THAT(LoadError({"--probe-listen=999.1.1.1:1"}), HasSubstr("is not an IPv4 address"));
  EXPECT_THAT(LoadError({"--listen=[::g]:1"}), HasSubstr("is not an IPv6 address"));
  for (const char* bad : {"256.0.0.0:9464", "999.1.1.1:1", "1.2.3:9464", "localhost:9464"}) {
    EXPECT_THAT(LoadError({"--metrics-listen", bad}),
                HasSubstr("metrics_listen (from --metrics-listen)"))
        << bad;
  }
  for (const char* good : {"0.0.0.0:9464", "127.0.0.1:0", "[::1]:9464"}) {
    EXPECT_EQ(Load({"--metrics-listen", good}).metrics_listen, good);
  }
  EXPECT_THAT(LoadError({"--listen="}),
              HasSubstr("listen (from --listen): must name at least one"));
}

TEST(ConfigValidate, ReportsEveryProblem) {
  const std::string error = LoadError({"--workers=0", "--shards=3"});
  EXPECT_THAT(error, HasSubstr("config: shards"));
  EXPECT_THAT(error, HasSubstr("config: workers"));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(error, '\n')).size(), 2u);
}

TEST(ConfigValidate, WithoutSourcesOmitsFrom) {
  Config c;
  c.workers = 0;
  EXPECT_EQ(Validate(c).message(), "config: workers: must be from 1 to 1024, got 0");
}

// --- help and the table -----------------------------------------------------

TEST(ConfigHelp, MentionsEveryOption) {
  const std::string help = HelpText();
  const Config defaults;
  for (const Option& option : Options()) {
    EXPECT_THAT(help, HasSubstr(std::string(option.flag) + "=")) << option.name;
    EXPECT_THAT(help, HasSubstr(option.env)) << option.name;
    if (!option.yaml_key.empty()) {
      EXPECT_THAT(help, HasSubstr("yaml " + std::string(option.yaml_key))) << option.name;
    }
    const std::string default_text = option.show(defaults);
    if (!default_text.empty()) {
      EXPECT_THAT(help, HasSubstr("default " + default_text)) << option.name;
    }
  }
  EXPECT_THAT(help, HasSubstr("cachecar [serve] [options]"));
  EXPECT_THAT(help, HasSubstr("cachecar version"));
  EXPECT_THAT(help, HasSubstr("cachecar help"));
  EXPECT_THAT(help, HasSubstr("Precedence: flags override environment"));
  EXPECT_THAT(help, HasSubstr("Example YAML file:"));
}

TEST(ConfigHelp, LinesFitTheTerminal) {
  for (absl::string_view line : absl::StrSplit(HelpText(), '\n')) {
    EXPECT_LE(line.size(), 79u) << line;
  }
}

TEST(ConfigHelp, ExampleFileLoadsAndUsesEveryKey) {
  for (const Option& option : Options()) {
    if (option.yaml_key.empty()) continue;
    EXPECT_THAT(kExampleYaml, HasSubstr(std::string(option.yaml_key) + ":")) << option.name;
  }
  TempYaml file(kExampleYaml);
  const Config c = Load({"--config", file.path()});
  EXPECT_EQ(c.max_bytes, 512u << 20);
  EXPECT_THAT(NamespaceNames(c), ElementsAre("sessions", "users", "countries", "default"));
}

// Issue #15 item 3: warm start and replicated namespaces.
TEST(ConfigWarmStart, FileAndRate) {
  EXPECT_EQ(Load({}, {}).warm_start_file, "");
  EXPECT_EQ(Load({}, {}).warm_start_rate, 50000u);
  const Config c = Load({"--warm-start-file=/cache/warm", "--warm-start-rate=1000"}, {});
  EXPECT_EQ(c.warm_start_file, "/cache/warm");
  EXPECT_EQ(c.warm_start_rate, 1000u);
  EXPECT_EQ(Load({}, {{"CACHECAR_WARM_START_FILE", "/w"}}).warm_start_file, "/w");
  EXPECT_THAT(LoadError({"--warm-start-file=relative/warm"}),
              HasSubstr("warm_start_file (from --warm-start-file): must be an absolute file path"));
  EXPECT_THAT(LoadError({"--warm-start-rate=0"}), HasSubstr("warm_start_rate"));
}

TEST(ConfigReplicated, ParsedAndItsRulesChecked) {
  TempYaml yaml("namespaces:\n  - {name: ref, replicated: true}\n  - {name: b}\n");
  const Config c = Load({"--config", yaml.path()});
  EXPECT_TRUE(c.namespaces[0].replicated);
  EXPECT_FALSE(c.namespaces[1].replicated);
  TempYaml bad_value("namespaces:\n  - {name: ref, replicated: yes please}\n");
  EXPECT_THAT(LoadError({"--config", bad_value.path()}), HasSubstr("use true or false"));
  TempYaml with_ttl("namespaces:\n  - {name: ref, replicated: true, ttl: 10m}\n");
  EXPECT_THAT(LoadError({"--config", with_ttl.path()}),
              HasSubstr("replicated: true needs sync: update and no ttl"));
  TempYaml invalidating("namespaces:\n  - {name: ref, replicated: true, sync: invalidate}\n");
  EXPECT_THAT(LoadError({"--config", invalidating.path()}), HasSubstr("needs sync: update"));
}

TEST(ConfigPostgres, DsnIsRedactedWhereverTheConfigIsPrinted) {
  const Config c =
      Load({"--store=postgres", "--postgres-dsn=host=db user=app password=hunter2 dbname=x"});
  EXPECT_EQ(c.postgres_dsn, "host=db user=app password=hunter2 dbname=x");
  const std::string text = DescribeConfig(c);
  EXPECT_THAT(text, HasSubstr("postgres_dsn=host=db user=app password=*** dbname=x"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("hunter2")));
}

TEST(ConfigPostgres, DsnFileIsReadAndTrimmed) {
  TempYaml dsn("postgresql://app:hunter2@db/x\n");
  const Config c = Load({"--store=postgres", "--postgres-dsn-file", dsn.path()});
  EXPECT_EQ(c.postgres_dsn, "postgresql://app:hunter2@db/x");
  EXPECT_THAT(DescribeConfig(c), ::testing::Not(HasSubstr("hunter2")));
}

TEST(ConfigPostgres, DsnFileErrorsSayWhatToFix) {
  EXPECT_THAT(LoadError({"--store=postgres", "--postgres-dsn-file=/nonexistent/dsn"}),
              HasSubstr("postgres_dsn_file (from --postgres-dsn-file): cannot read "
                        "\"/nonexistent/dsn\": No such file or directory"));
  TempYaml dsn("host=db");
  EXPECT_THAT(LoadError({"--postgres-dsn=host=x", "--postgres-dsn-file", dsn.path()}),
              HasSubstr("postgres_dsn is also set (from --postgres-dsn); set only one"));
}

TEST(ConfigPostgres, BareBooleanFlagMeansTrue) {
  EXPECT_TRUE(Load({"--migrate"}).migrate);
  EXPECT_FALSE(Load({"--migrate", "false"}).migrate);
  EXPECT_FALSE(Load({"--postgres-prepared-statements=false"}).postgres_prepared_statements);
  const Config c = Load({"--migrate", "--workers=3"});
  EXPECT_TRUE(c.migrate);
  EXPECT_EQ(c.workers, 3u);
}

TEST(ConfigPostgres, NamespaceTableNeedsAllThreeNamesAndPostgres) {
  TempYaml partial(
      "store: postgres\npostgres_dsn: host=db\nnamespaces:\n"
      "  - name: users\n    table: users\n");
  EXPECT_THAT(LoadError({"--config", partial.path()}),
              HasSubstr("namespace \"users\": table, key_column and value_column go "
                        "together"));
  TempYaml memory(
      "namespaces:\n  - name: users\n    table: users\n    key_column: id\n"
      "    value_column: v\n");
  EXPECT_THAT(LoadError({"--config", memory.path()}),
              HasSubstr("table is set but store is \"memory\""));
  TempYaml bad(
      "store: postgres\npostgres_dsn: host=db\nnamespaces:\n  - name: users\n"
      "    table: users\n    key_column: \"id; drop\"\n    value_column: v\n");
  EXPECT_THAT(LoadError({"--config", bad.path()}), HasSubstr("must be plain SQL names"));
  TempYaml good(
      "store: postgres\npostgres_dsn: host=db\nnamespaces:\n  - name: users\n"
      "    table: app.users\n    key_column: id\n    value_column: profile\n");
  const Config c = Load({"--config", good.path()});
  EXPECT_EQ(c.namespaces[0].table, "app.users");
  EXPECT_EQ(c.namespaces[0].key_column, "id");
  EXPECT_EQ(c.namespaces[0].value_column, "profile");
}

// The table is what the three spellings are generated from; keep them regular.
TEST(ConfigTable, SpellingsAreConsistentAndUnique) {
  std::set<absl::string_view> flags, envs, keys;
  for (const Option& option : Options()) {
    EXPECT_TRUE(flags.insert(option.flag).second) << option.flag;
    EXPECT_TRUE(envs.insert(option.env).second) << option.env;
    std::string upper(option.name);
    for (char& ch : upper) ch = absl::ascii_toupper(ch);
    EXPECT_EQ(option.env, "CACHECAR_" + upper);
    EXPECT_TRUE(option.yaml_key.empty() || option.yaml_key == option.name);
    if (!option.yaml_key.empty()) {
      EXPECT_TRUE(keys.insert(option.yaml_key).second) << option.yaml_key;
    }
    EXPECT_TRUE(absl::StartsWith(option.flag, "--"));
    EXPECT_NE(option.set, nullptr);
    EXPECT_NE(option.show, nullptr);
  }
}

TEST(ConfigDescribe, NamesEveryOptionThatHasAValue) {
  const Config config = Load({"--workers=3"});
  const std::string text = DescribeConfig(config);
  EXPECT_THAT(text, HasSubstr("workers=3"));
  EXPECT_THAT(text, HasSubstr("namespaces=default"));
  for (const Option& option : Options()) {
    const std::string name = std::string(option.name) + "=";
    if (option.show(config).empty()) {
      EXPECT_THAT(" " + text, ::testing::Not(HasSubstr(" " + name)))
          << "unset options are left out";
    } else {
      EXPECT_THAT(text, HasSubstr(name));
    }
  }
}

}  // namespace
}  // namespace cachecar::config

namespace cachecar::config {
namespace {

const Args kPg = {"--store=postgres", "--postgres-dsn=host=db"};

Args WithPg(Args more) {
  Args args = kPg;
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(ConfigLocalRead, OffByDefaultAndTakesAnAbsoluteFilePath) {
  EXPECT_EQ(Load({}, {}).local_read_path, "");
  EXPECT_EQ(Load({"--local-read-path=/run/cachecar-local/cache"}, {}).local_read_path,
            "/run/cachecar-local/cache");
  EXPECT_EQ(Load({}, {{"CACHECAR_LOCAL_READ_PATH", "/dev/shm/c"}}).local_read_path, "/dev/shm/c");
  for (const std::string& bad :
       std::vector<std::string>{"relative/cache", "/run/dir/", "/" + std::string(100, 'x')}) {
    auto r = LoadConfig({"--local-read-path=" + bad}, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr("config: local_read_path (from --local-read-path): must be an absolute "
                          "file path"))
        << bad;
  }
}

TEST(ConfigSync, DefaultsHaveNoSyncAndBypassAtTwoSeconds) {
  const Config c = Load({});
  EXPECT_TRUE(c.kafka_brokers.empty());
  EXPECT_EQ(c.sync_topic, "cachecar-sync");
  EXPECT_EQ(c.max_staleness, absl::Seconds(2));
  EXPECT_EQ(c.stale_reads, "bypass");
  EXPECT_EQ(c.sync_inline_max, 1024u);
}

TEST(ConfigSync, KafkaNeedsThePostgresStore) {
  EXPECT_THAT(LoadError({"--kafka-brokers=127.0.0.1:9092"}),
              HasSubstr("kafka_brokers (from --kafka-brokers): a sync topic needs store: "
                        "postgres"));
  EXPECT_EQ(Load(WithPg({"--kafka-brokers=127.0.0.1:9092"})).kafka_brokers, "127.0.0.1:9092");
}

TEST(ConfigSync, BadValuesSayWhatToFix) {
  EXPECT_THAT(LoadError({"--stale-reads=maybe"}), HasSubstr("must be bypass or serve"));
  EXPECT_THAT(LoadError({"--max-staleness=10ms"}), HasSubstr("must be from 100ms to 1h"));
  EXPECT_THAT(LoadError(WithPg({"--kafka-brokers=k:9092", "--sync-topic=bad topic"})),
              HasSubstr("is not a Kafka topic name"));
  EXPECT_THAT(LoadError({"--kafka-property=linger.ms"}), HasSubstr("is not name=value"));
}

TEST(ConfigSync, KafkaPropertiesFromFlagsEnvAndAYamlMap) {
  EXPECT_EQ(Load({"--kafka-property=linger.ms=5", "--kafka-property", "acks=1"}).kafka_properties,
            (std::vector<std::string>{"linger.ms=5", "acks=1"}));
  EXPECT_EQ(Load({}, {{"CACHECAR_KAFKA_PROPERTIES", "a.b=1,c.d=2"}}).kafka_properties,
            (std::vector<std::string>{"a.b=1", "c.d=2"}));
  // Values that are comma lists themselves stay whole.
  EXPECT_EQ(Load({"--kafka-property=debug=cgrp,fetch", "--kafka-property",
                  "ssl.cipher.suites=A,B,acks=all"})
                .kafka_properties,
            (std::vector<std::string>{"debug=cgrp,fetch", "ssl.cipher.suites=A,B", "acks=all"}));
  TempYaml yaml("kafka_properties:\n  security.protocol: SASL_SSL\n  sasl.password: hunter2\n");
  const Config c = Load({"--config", yaml.path()});
  EXPECT_EQ(c.kafka_properties,
            (std::vector<std::string>{"security.protocol=SASL_SSL", "sasl.password=hunter2"}));
  const std::string text = DescribeConfig(c);
  EXPECT_THAT(text, HasSubstr("sasl.password=***"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("hunter2")));
}

TEST(ConfigSync, NamespaceSyncMode) {
  TempYaml yaml("namespaces:\n  - name: a\n    sync: invalidate\n  - name: b\n");
  const Config c = Load({"--config", yaml.path()});
  ASSERT_GE(c.namespaces.size(), 2u);  // and "default"
  EXPECT_EQ(c.namespaces[0].sync, "invalidate");
  EXPECT_EQ(c.namespaces[1].sync, "update");
  TempYaml bad("namespaces:\n  - name: a\n    sync: sometimes\n");
  EXPECT_THAT(LoadError({"--config", bad.path()}),
              HasSubstr("use update (values travel on the topic) or invalidate"));
}

}  // namespace
}  // namespace cachecar::config
