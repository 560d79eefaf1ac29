// The C++ runner of clients/conformance/cases.json: interprets every case's
// steps with cachecar::client and prints "ok - NAME" / "FAIL - NAME: ..."
// lines and an "N passed, N failed" summary (clients/conformance/README.md
// is the spec). Started by clients/conformance/run.sh, which sets the
// environment it reads.
//
// The JSON is parsed into google.protobuf.Struct (protobuf's own JSON
// parser, already a dependency) rather than with another JSON library.
// Single-threaded, except `async` steps, which run on threads of their own.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/client/client.h"

namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;
namespace cc = cachecar::client;

std::string Env(const char* name, const char* fallback = nullptr) {
  const char* v = std::getenv(name);
  if (v != nullptr && *v != '\0') return v;
  if (fallback != nullptr) return fallback;
  std::cerr << "conformance: " << name
            << " is not set (run me through clients/conformance/run.sh)\n";
  std::exit(2);
}

struct Failure {
  std::string what;
};

// One call's answer, in the spec's field names.
struct Answer {
  std::optional<cc::Status> error;
  std::map<std::string, Value> fields;  // found, value(bytes as string), version, ...
  std::vector<std::map<std::string, Value>> entries;
  int attempts = 1;
};

Value Bool(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}
Value Num(double d) {
  Value v;
  v.set_number_value(d);
  return v;
}
Value Str(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}

const Value* Field(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

std::string Printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 60)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (bytes.size() > 60) out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

std::string Repeat(const Struct& spec) {
  std::string unit = Field(spec, "repeat")->string_value(), out;
  int n = static_cast<int>(Field(spec, "count")->number_value());
  out.reserve(unit.size() * n);
  for (int i = 0; i < n; ++i) out += unit;
  return out;
}

class CaseRun {
 public:
  CaseRun(cc::Client& client, std::string prefix, std::vector<std::string> control)
      : client_(client), prefix_(std::move(prefix)), control_(std::move(control)) {}

  ~CaseRun() {
    for (auto& [id, w] : watches_) w->Cancel();
    for (auto& [id, f] : asyncs_) f.wait();
  }

  void Step(const Struct& step) {
    std::string op = Field(step, "op")->string_value();
    if (op == "control") return Control(step);
    if (op == "watch_open") return WatchOpen(step);
    if (op == "watch_next") return WatchNext(step);
    if (op == "watch_close") {
      auto it = watches_.find(Id(step));
      if (it == watches_.end()) throw Failure{"no open watch " + Id(step)};
      it->second->Cancel();
      watches_.erase(it);
      return;
    }
    if (op == "await") {
      auto it = asyncs_.find(Id(step));
      if (it == asyncs_.end()) throw Failure{"no async call " + Id(step)};
      Answer a = it->second.get();
      asyncs_.erase(it);
      return Check(step, a);
    }
    if (const Value* id = Field(step, "async")) {
      asyncs_[id->string_value()] =
          std::async(std::launch::async, [this, step, op] { return Call(op, step); });
      return;
    }
    const Value* eventually = Field(step, "eventually_ms");
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(eventually ? int(eventually->number_value()) : 0);
    for (;;) {
      Answer a = Call(op, step);
      try {
        return Check(step, a);
      } catch (const Failure&) {
        if (std::chrono::steady_clock::now() >= until) throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  static std::string Id(const Struct& step) { return Field(step, "id")->string_value(); }

  std::string Key(const Value& spec) const {
    if (spec.has_string_value()) return prefix_ + spec.string_value();
    const Struct& s = spec.struct_value();
    if (const Value* raw = Field(s, "raw")) return raw->string_value();
    return Repeat(s);
  }

  std::vector<std::string> Keys(const Value& spec) const {
    std::vector<std::string> out;
    if (spec.has_list_value()) {
      for (const Value& k : spec.list_value().values()) out.push_back(Key(k));
      return out;
    }
    const Struct& s = spec.struct_value();
    int n = static_cast<int>(Field(s, "count")->number_value());
    for (int i = 0; i < n; ++i)
      out.push_back(prefix_ + Field(s, "prefix")->string_value() + std::to_string(i));
    return out;
  }

  static std::string Bytes(const Value& spec) {
    if (spec.has_string_value()) return spec.string_value();
    const Struct& s = spec.struct_value();
    if (const Value* hex = Field(s, "hex")) {
      std::string out, h = hex->string_value();
      for (size_t i = 0; i + 1 < h.size(); i += 2)
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
      return out;
    }
    return Repeat(s);
  }

  // ${name} and ${key:k} in text.
  std::string Interpolate(const std::string& text) const {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      size_t open = text.find("${", i);
      if (open == std::string::npos) {
        out += text.substr(i);
        break;
      }
      size_t close = text.find('}', open);
      out += text.substr(i, open - i);
      std::string name = text.substr(open + 2, close - open - 2);
      if (name.rfind("key:", 0) == 0) {
        out += prefix_ + name.substr(4);
      } else {
        auto it = vars_.find(name);
        if (it == vars_.end()) throw Failure{"unknown variable ${" + name + "}"};
        out += std::to_string(it->second);
      }
      i = close + 1;
    }
    return out;
  }

  uint64_t Var(const std::string& name) const {
    auto it = vars_.find(name);
    if (it == vars_.end()) throw Failure{"unknown variable $" + name};
    return it->second;
  }

  uint64_t Number(const Value& v) const {
    if (v.has_number_value()) return static_cast<uint64_t>(v.number_value());
    const std::string& s = v.string_value();
    return s.rfind('$', 0) == 0 ? Var(s.substr(1)) : std::stoull(s);
  }

  static std::chrono::microseconds Timeout(const Struct& step) {
    if (const Value* us = Field(step, "timeout_us"))
      return std::chrono::microseconds(int64_t(us->number_value()));
    if (const Value* ms = Field(step, "timeout_ms"))
      return std::chrono::milliseconds(int64_t(ms->number_value()));
    return std::chrono::seconds(10);
  }

  std::string Ns(const Struct& step) const {
    const Value* ns = Field(step, "namespace");
    return ns ? ns->string_value() : "";
  }

  static cc::Consistency Consistency(const Struct& step) {
    const Value* c = Field(step, "consistency");
    return c && c->string_value() == "STRONG" ? cc::Consistency::kStrong : cc::Consistency::kCached;
  }

  Answer Call(const std::string& op, const Struct& step) {
    Answer a;
    if (op == "get") {
      cc::ReadOptions o;
      o.timeout = Timeout(step);
      o.consistency = Consistency(step);
      auto r = client_.Get(Ns(step), Key(*Field(step, "key")), o);
      if (!r.ok()) return Failed(r.status());
      a.attempts = r->attempts;
      a.fields = {{"found", Bool(r->found)},
                  {"value", Str(r->value)},
                  {"version", Num(double(r->version))},
                  {"source", Str(cc::SourceName(r->source))},
                  {"local", Str(cc::LocalResultName(r->local))}};
    } else if (op == "batch_get") {
      cc::ReadOptions o;
      o.timeout = Timeout(step);
      o.consistency = Consistency(step);
      auto r = client_.BatchGet(Ns(step), Keys(*Field(step, "keys")), o);
      if (!r.ok()) return Failed(r.status());
      a.attempts = r->attempts;
      for (const cc::BatchEntry& e : r->entries) {
        a.entries.push_back({{"key", Str(e.key)},
                             {"found", Bool(e.found)},
                             {"value", Str(e.value)},
                             {"version", Num(double(e.version))},
                             {"source", Str(cc::SourceName(e.source))}});
      }
    } else if (op == "put") {
      cc::PutOptions o;
      o.timeout = Timeout(step);
      if (const Value* v = Field(step, "if_version")) o.if_version = Number(*v);
      if (const Value* v = Field(step, "if_absent")) o.if_absent = v->bool_value();
      if (const Value* v = Field(step, "ttl_ms")) o.ttl_ms = Number(*v);
      if (const Value* v = Field(step, "retry_outcome_unknown"))
        o.retry_outcome_unknown = v->bool_value();
      auto r = client_.Put(Ns(step), Key(*Field(step, "key")), Bytes(*Field(step, "value")), o);
      if (!r.ok()) return Failed(r.status());
      a.attempts = r->attempts;
      a.fields = {{"version", Num(double(r->version))},
                  {"retried_outcome_unknown", Bool(r->retried_outcome_unknown)}};
    } else if (op == "delete") {
      cc::DeleteOptions o;
      o.timeout = Timeout(step);
      if (const Value* v = Field(step, "if_version")) o.if_version = Number(*v);
      if (const Value* v = Field(step, "retry_outcome_unknown"))
        o.retry_outcome_unknown = v->bool_value();
      auto r = client_.Delete(Ns(step), Key(*Field(step, "key")), o);
      if (!r.ok()) return Failed(r.status());
      a.attempts = r->attempts;
      a.fields = {{"found", Bool(r->found)},
                  {"version", Num(double(r->version))},
                  {"retried_outcome_unknown", Bool(r->retried_outcome_unknown)}};
    } else if (op == "invalidate") {
      cc::InvalidateOptions o;
      o.timeout = Timeout(step);
      if (const Value* v = Field(step, "all")) o.all = v->bool_value();
      if (const Value* v = Field(step, "broadcast")) o.broadcast = v->bool_value();
      const Value* keys = Field(step, "keys");
      auto r = client_.Invalidate(Ns(step), keys ? Keys(*keys) : std::vector<std::string>{}, o);
      if (!r.ok()) return Failed(r.status());
      a.attempts = r->attempts;
      a.fields = {{"dropped", Num(double(r->dropped))}};
    } else {
      throw Failure{"unknown op " + op};
    }
    return a;
  }

  static Answer Failed(const cc::Status& s) {
    Answer a;
    a.error = s;
    a.attempts = s.attempts();
    return a;
  }

  void CheckError(const Struct& want, const cc::Status& got) const {
    std::string code = Field(want, "code")->string_value();
    if (code != cc::CodeName(got.code()))
      throw Failure{"wanted " + code + ", got " + got.ToString()};
    if (const Value* m = Field(want, "message_contains")) {
      for (const Value& part : m->list_value().values()) {
        std::string p = Interpolate(part.string_value());
        if (got.message().find(p) == std::string::npos) {
          throw Failure{"message lacks \"" + p + "\": " + got.ToString()};
        }
      }
    }
    if (const Value* u = Field(want, "outcome_unknown")) {
      if (u->bool_value() != got.outcome_unknown()) {
        throw Failure{std::string("wanted outcome_unknown=") +
                      (u->bool_value() ? "true" : "false") + ", got " + got.ToString()};
      }
    }
  }

  void CompareNumber(const std::string& name, const Value& want, uint64_t got) const {
    bool ok;
    std::string w;
    if (want.has_number_value()) {
      ok = got == static_cast<uint64_t>(want.number_value());
      w = std::to_string(static_cast<uint64_t>(want.number_value()));
    } else {
      w = want.string_value();
      std::string opr, rest = w;
      for (const char* o : {">=", "<=", ">", "<"}) {
        if (w.rfind(o, 0) == 0) {
          opr = o;
          rest = w.substr(opr.size());
          break;
        }
      }
      uint64_t x = rest.rfind('$', 0) == 0 ? Var(rest.substr(1)) : std::stoull(rest);
      ok = opr == ">="   ? got >= x
           : opr == "<=" ? got <= x
           : opr == ">"  ? got > x
           : opr == "<"  ? got < x
                         : got == x;
      w = opr + std::to_string(x);
    }
    if (!ok) throw Failure{name + "=" + std::to_string(got) + ", wanted " + (w.empty() ? "?" : w)};
  }

  void CompareFields(const std::string& where, const Struct& want,
                     const std::map<std::string, Value>& got) const {
    for (const auto& [name, w] : want.fields()) {
      auto it = got.find(name);
      if (it == got.end()) throw Failure{where + "no field " + name + " in the answer"};
      const Value& g = it->second;
      if (name == "version" || name == "dropped") {
        CompareNumber(where + name, w, static_cast<uint64_t>(g.number_value()));
      } else if (name == "value") {
        std::string wb = Bytes(w);
        if (wb != g.string_value()) {
          throw Failure{where + "value \"" + Printable(g.string_value()) + "\", wanted \"" +
                        Printable(wb) + "\""};
        }
      } else if (name == "key") {
        if (Key(w) != g.string_value())
          throw Failure{where + "key " + g.string_value() + ", wanted " + Key(w)};
      } else if (w.has_bool_value()) {
        if (w.bool_value() != g.bool_value()) {
          throw Failure{where + name + "=" + (g.bool_value() ? "true" : "false") + ", wanted " +
                        (w.bool_value() ? "true" : "false")};
        }
      } else if (w.string_value() != g.string_value()) {
        throw Failure{where + name + "=" + g.string_value() + ", wanted " + w.string_value()};
      }
    }
  }

  void Check(const Struct& step, const Answer& a) {
    const Value* expect_v = Field(step, "expect");
    Struct expect = expect_v ? expect_v->struct_value() : Struct();
    if (const Value* err = Field(expect, "error")) {
      if (!a.error)
        throw Failure{"succeeded; wanted " + Field(err->struct_value(), "code")->string_value()};
      CheckError(err->struct_value(), *a.error);
    } else if (a.error) {
      throw Failure{"failed: " + a.error->ToString()};
    }
    if (const Value* n = Field(expect, "attempts")) CompareNumber("attempts", *n, a.attempts);
    Struct plain;
    for (const auto& [name, w] : expect.fields()) {
      if (name != "error" && name != "attempts" && name != "entries")
        (*plain.mutable_fields())[name] = w;
    }
    CompareFields("", plain, a.fields);
    if (const Value* entries = Field(expect, "entries")) {
      const auto& want = entries->list_value().values();
      if (want.size() != static_cast<int>(a.entries.size())) {
        throw Failure{std::to_string(a.entries.size()) + " entries, wanted " +
                      std::to_string(want.size())};
      }
      for (int i = 0; i < want.size(); ++i) {
        CompareFields("entries[" + std::to_string(i) + "].", want[i].struct_value(), a.entries[i]);
      }
    }
    if (const Value* save = Field(step, "save")) {
      for (const auto& [var, field] : save->struct_value().fields()) {
        auto it = a.fields.find(field.string_value());
        if (it == a.fields.end()) throw Failure{"cannot save " + field.string_value()};
        vars_[var] = static_cast<uint64_t>(it->second.number_value());
      }
    }
  }

  void Control(const Struct& step) {
    std::vector<std::string> argv = control_;
    argv.push_back(Field(step, "action")->string_value());
    if (const Value* args = Field(step, "args")) {
      for (const Value& v : args->list_value().values())
        argv.push_back(Interpolate(v.string_value()));
    }
    std::string cmd;
    for (const std::string& a : argv) {
      std::string quoted = "'";
      for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      cmd += quoted + "' ";
    }
    int rc = std::system(cmd.c_str());
    if (rc != 0)
      throw Failure{"control " + argv[control_.size()] + " exited " +
                    std::to_string(WEXITSTATUS(rc))};
  }

  void WatchOpen(const Struct& step) {
    const Value* prefix = Field(step, "prefix");
    cc::CallOptions o;
    o.timeout = Timeout(step);
    auto r = client_.Watch(Ns(step), prefix ? Key(*prefix) : prefix_, o);
    Answer a;
    if (!r.ok()) a = Failed(r.status());
    Check(step, a);
    if (r.ok()) watches_[Id(step)] = std::move(r.value());
  }

  void WatchNext(const Struct& step) {
    auto it = watches_.find(Id(step));
    if (it == watches_.end()) throw Failure{"no open watch " + Id(step)};
    cc::WatchStream& w = *it->second;
    // Next() blocks: a timer cancels the stream if the step runs out of time.
    std::promise<void> finished;
    std::thread timer([&w, f = finished.get_future(), t = Timeout(step)]() mutable {
      if (f.wait_for(t) == std::future_status::timeout) w.Cancel();
    });
    struct Join {
      std::promise<void>& p;
      std::thread& t;
      ~Join() {
        p.set_value();
        t.join();
      }
    } join{finished, timer};
    const Struct& expect = Field(step, "expect")->struct_value();
    if (const Value* err = Field(expect, "error")) {
      cc::WatchEvent e;
      while (w.Next(&e)) {
      }
      return CheckError(err->struct_value(), w.status());
    }
    std::map<std::pair<std::string, uint64_t>, bool> seen;
    for (const Value& want : Field(expect, "events")->list_value().values()) {
      for (;;) {
        cc::WatchEvent e;
        if (!w.Next(&e)) throw Failure{"stream ended: " + w.status().ToString()};
        if (e.version != 0 && seen.count({e.key, e.version})) continue;  // a duplicate
        seen[{e.key, e.version}] = true;
        std::map<std::string, Value> got = {{"key", Str(e.key)},
                                            {"op", Str(cc::WatchOpName(e.op))},
                                            {"version", Num(double(e.version))},
                                            {"local", Bool(e.local)}};
        CompareFields("event ", want.struct_value(), got);
        break;
      }
    }
  }

  cc::Client& client_;
  std::string prefix_;
  std::vector<std::string> control_;
  std::map<std::string, uint64_t> vars_;
  std::map<std::string, std::unique_ptr<cc::WatchStream>> watches_;
  std::map<std::string, std::future<Answer>> asyncs_;
};

}  // namespace

int main() {
  std::string addr = Env("CONFORMANCE_ADDR"), cases_path = Env("CONFORMANCE_CASES");
  std::string store = Env("CONFORMANCE_STORE"), prefix = Env("CONFORMANCE_PREFIX");
  std::string only = Env("CONFORMANCE_ONLY", "");
  std::vector<std::string> control;
  {
    std::istringstream words(Env("CONFORMANCE_CONTROL"));
    for (std::string w; words >> w;) control.push_back(w);
  }
  std::ifstream in(cases_path);
  std::stringstream text;
  text << in.rdbuf();
  Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &doc).ok()) {
    std::cerr << "conformance: cannot parse " << cases_path << "\n";
    return 2;
  }
  cc::Options options;
  options.target = addr;
  cc::Client client(options);
  // Cases that need the local read path use a client that reads the
  // published cache (the others keep asserting the gRPC answers).
  std::unique_ptr<cc::Client> local_client;
  if (const std::string path = Env("CONFORMANCE_LOCAL_PATH", ""); !path.empty()) {
    cc::Options local_options = options;
    local_options.local_read_path = path;
    local_client = std::make_unique<cc::Client>(local_options);
  }
  int passed = 0, failed = 0, skipped = 0;
  for (const Value& c : Field(doc, "cases")->list_value().values()) {
    const Struct& kase = c.struct_value();
    std::string name = Field(kase, "name")->string_value();
    if (!only.empty() && ("," + only + ",").find("," + name + ",") == std::string::npos) continue;
    if (const Value* stores = Field(kase, "stores")) {
      bool here = false;
      for (const Value& s : stores->list_value().values()) here = here || s.string_value() == store;
      if (!here) {
        std::cout << "skip - " << name << " (not for the " << store << " store)\n";
        ++skipped;
        continue;
      }
    }
    bool uses_local = false;
    if (const Value* requires = Field(kase, "requires")) {
      bool local = false;
      for (const Value& r : requires->list_value().values())
        local = local || r.string_value() == "local";
      if (local && local_client == nullptr) {
        std::cout << "skip - " << name
                  << " (this cachecar publishes no cache: no --local-read-path)\n";
        ++skipped;
        continue;
      }
      uses_local = local;
    }
    int i = 0;
    std::string op;
    CaseRun run(uses_local ? *local_client : client, prefix + name + ":", control);
    try {
      for (const Value& step : Field(kase, "steps")->list_value().values()) {
        ++i;
        op = Field(step.struct_value(), "op")->string_value();
        run.Step(step.struct_value());
      }
      std::cout << "ok - " << name << std::endl;
      ++passed;
    } catch (const Failure& f) {
      std::cout << "FAIL - " << name << ": step " << i << " (" << op << "): " << f.what
                << std::endl;
      ++failed;
      // Undo what the case left (a table lock, a stopped sidecar or broker)
      // before its open calls are waited for, so the next case starts clean.
      std::vector<std::string> reset = control;
      reset.push_back("reset");
      std::string cmd;
      for (const std::string& a : reset) cmd += a + " ";
      if (std::system(cmd.c_str()) != 0) std::cout << "# control reset failed" << std::endl;
    }
  }
  std::cout << passed << " passed, " << failed << " failed, " << skipped << " skipped" << std::endl;
  return failed == 0 ? 0 : 1;
}
