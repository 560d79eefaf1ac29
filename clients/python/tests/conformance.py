#!/usr/bin/env python3
"""The Python runner of clients/conformance/cases.json: interprets every
case's steps with the installed cachecar package and prints "ok - NAME" /
"FAIL - NAME: ..." lines and an "N passed, N failed" summary
(clients/conformance/README.md is the spec). clients/conformance/run.sh
starts it with the environment it reads.
"""
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import grpc

import cachecar


class Failure(Exception):
    pass


class Answer:
    def __init__(self, error=None, fields=None, entries=None, attempts=1):
        self.error, self.fields, self.entries, self.attempts = error, fields or {}, entries, attempts


def failed(e: cachecar.Error) -> Answer:
    return Answer(error=e, attempts=e.attempts)


def repeat(spec) -> str:
    return spec["repeat"] * spec["count"]


def value_of(spec) -> bytes:
    if isinstance(spec, str):
        return spec.encode()
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    return repeat(spec).encode()


def timeout_of(step) -> float:
    if "timeout_us" in step:
        return step["timeout_us"] / 1e6
    if "timeout_ms" in step:
        return step["timeout_ms"] / 1e3
    return 10.0


def printable(b: bytes) -> str:
    return repr(b[:60]) + (f"...({len(b)} bytes)" if len(b) > 60 else "")


class CaseRun:
    def __init__(self, client, prefix, control, pool):
        self.client, self.prefix, self.control, self.pool = client, prefix, control, pool
        self.vars, self.watches, self.asyncs = {}, {}, {}

    def close(self):
        for w in self.watches.values():
            w.close()
        for f in self.asyncs.values():
            f.result()

    def key(self, spec) -> str:
        if isinstance(spec, str):
            return self.prefix + spec
        if "raw" in spec:
            return spec["raw"]
        return repeat(spec)

    def keys(self, spec):
        if isinstance(spec, list):
            return [self.key(k) for k in spec]
        return [f"{self.prefix}{spec['prefix']}{i}" for i in range(spec["count"])]

    def var(self, name):
        if name not in self.vars:
            raise Failure(f"unknown variable ${name}")
        return self.vars[name]

    def interpolate(self, text: str) -> str:
        out = ""
        while "${" in text:
            i = text.index("${")
            j = text.index("}", i)
            name = text[i + 2:j]
            out += text[:i] + (self.prefix + name[4:] if name.startswith("key:") else str(self.var(name)))
            text = text[j + 1:]
        return out + text

    def number(self, v) -> int:
        if isinstance(v, str):
            return self.var(v[1:]) if v.startswith("$") else int(v)
        return int(v)

    def call(self, op, step) -> Answer:
        c, ns, t = self.client, step.get("namespace", ""), timeout_of(step)
        strong = step.get("consistency") == "STRONG"
        try:
            if op == "get":
                v = c.get(ns, self.key(step["key"]), strong=strong, timeout=t)
                return Answer(fields={"found": v.found, "value": v.value, "version": v.version,
                                      "source": v.source.value, "local": v.local.name},
                              attempts=v.attempts)
            if op == "batch_get":
                v = c.batch_get(ns, self.keys(step["keys"]), strong=strong, timeout=t)
                return Answer(entries=[{"key": e.key, "found": e.found, "value": e.value, "version": e.version,
                                        "source": e.source.value} for e in v.entries], attempts=v.attempts)
            if op == "put":
                v = c.put(ns, self.key(step["key"]), value_of(step["value"]),
                          if_version=self.number(step["if_version"]) if "if_version" in step else None,
                          if_absent=step.get("if_absent", False), ttl_ms=step.get("ttl_ms", 0),
                          retry_outcome_unknown=step.get("retry_outcome_unknown", False), timeout=t)
                return Answer(fields={"version": v.version, "retried_outcome_unknown": v.retried_outcome_unknown},
                              attempts=v.attempts)
            if op == "delete":
                v = c.delete(ns, self.key(step["key"]),
                             if_version=self.number(step["if_version"]) if "if_version" in step else None,
                             retry_outcome_unknown=step.get("retry_outcome_unknown", False), timeout=t)
                return Answer(fields={"found": v.found, "version": v.version,
                                      "retried_outcome_unknown": v.retried_outcome_unknown}, attempts=v.attempts)
            if op == "invalidate":
                if step.get("all"):
                    v = c.invalidate_all(ns, broadcast=step.get("broadcast", False), timeout=t)
                else:
                    v = c.invalidate(ns, self.keys(step.get("keys", [])), broadcast=step.get("broadcast", False),
                                     timeout=t)
                return Answer(fields={"dropped": v.dropped}, attempts=v.attempts)
        except cachecar.Error as e:
            return failed(e)
        raise Failure(f"unknown op {op}")

    def check_error(self, want, got: cachecar.Error):
        if want["code"] != got.code_name:
            raise Failure(f"wanted {want['code']}, got {got}")
        for part in want.get("message_contains", []):
            p = self.interpolate(part)
            if p not in got.message:
                raise Failure(f"message lacks {p!r}: {got}")
        if "outcome_unknown" in want and want["outcome_unknown"] != got.outcome_unknown:
            raise Failure(f"wanted outcome_unknown={want['outcome_unknown']}, got {got}")

    def compare_number(self, name, want, got):
        if not isinstance(want, str):
            if got != want:
                raise Failure(f"{name}={got}, wanted {want}")
            return
        op, rest = "", want
        for o in (">=", "<=", ">", "<"):
            if want.startswith(o):
                op, rest = o, want[len(o):]
                break
        x = self.number(rest)
        ok = {">=": got >= x, "<=": got <= x, ">": got > x, "<": got < x, "": got == x}[op]
        if not ok:
            raise Failure(f"{name}={got}, wanted {op}{x}")

    def compare_fields(self, where, want, got):
        for name, w in want.items():
            if name not in got:
                raise Failure(f"{where}no field {name} in the answer")
            g = got[name]
            if name in ("version", "dropped"):
                self.compare_number(where + name, w, g)
            elif name == "value":
                if value_of(w) != g:
                    raise Failure(f"{where}value {printable(g)}, wanted {printable(value_of(w))}")
            elif name == "key":
                if self.key(w) != g:
                    raise Failure(f"{where}key {g}, wanted {self.key(w)}")
            elif w != g:
                raise Failure(f"{where}{name}={g}, wanted {w}")

    def check(self, step, a: Answer):
        expect = step.get("expect", {})
        if "error" in expect:
            if a.error is None:
                raise Failure(f"succeeded; wanted {expect['error']['code']}")
            self.check_error(expect["error"], a.error)
        elif a.error is not None:
            raise Failure(f"failed: {a.error}")
        if "attempts" in expect:
            self.compare_number("attempts", expect["attempts"], a.attempts)
        self.compare_fields("", {k: v for k, v in expect.items() if k not in ("error", "attempts", "entries")},
                            a.fields)
        if "entries" in expect:
            want = expect["entries"]
            if len(want) != len(a.entries):
                raise Failure(f"{len(a.entries)} entries, wanted {len(want)}")
            for i, (w, g) in enumerate(zip(want, a.entries)):
                self.compare_fields(f"entries[{i}].", w, g)
        for var, f in step.get("save", {}).items():
            if f not in a.fields:
                raise Failure(f"cannot save {f}")
            self.vars[var] = a.fields[f]

    def run_control(self, step):
        argv = self.control + [step["action"]] + [self.interpolate(a) for a in step.get("args", [])]
        rc = subprocess.call(argv, stdout=sys.stderr)
        if rc != 0:
            raise Failure(f"control {step['action']} exited {rc}")

    def watch_next(self, step):
        w = self.watches.get(step["id"])
        if w is None:
            raise Failure(f"no open watch {step['id']}")
        # next_event blocks: a timer closes the stream if the step runs out of time.
        timer = threading.Timer(timeout_of(step), w.close)
        timer.start()
        try:
            expect = step["expect"]
            if "error" in expect:
                while True:
                    try:
                        w.next_event()
                    except cachecar.Error as e:
                        return self.check_error(expect["error"], e)
            seen = set()
            for want in expect["events"]:
                while True:
                    try:
                        e = w.next_event()
                    except cachecar.Error as err:
                        raise Failure(f"stream ended: {err}") from None
                    if e.version != 0 and (e.key, e.version) in seen:
                        continue  # a duplicate
                    seen.add((e.key, e.version))
                    self.compare_fields("event ", want, {"key": e.key, "op": e.op.value, "version": e.version,
                                                         "local": e.local})
                    break
        finally:
            timer.cancel()

    def step(self, step):
        op = step["op"]
        if op == "control":
            return self.run_control(step)
        if op == "watch_open":
            prefix = self.key(step["prefix"]) if "prefix" in step else self.prefix
            try:
                w = self.client.watch(step.get("namespace", ""), prefix, timeout=timeout_of(step))
                a = Answer()
            except cachecar.Error as e:
                w, a = None, failed(e)
            self.check(step, a)
            if w is not None:
                self.watches[step["id"]] = w
            return None
        if op == "watch_next":
            return self.watch_next(step)
        if op == "watch_close":
            if step["id"] not in self.watches:
                raise Failure(f"no open watch {step['id']}")
            self.watches.pop(step["id"]).close()
            return None
        if op == "await":
            if step["id"] not in self.asyncs:
                raise Failure(f"no async call {step['id']}")
            return self.check(step, self.asyncs.pop(step["id"]).result())
        if "async" in step:
            self.asyncs[step["async"]] = self.pool.submit(self.call, op, step)
            return None
        until = time.monotonic() + step.get("eventually_ms", 0) / 1000
        while True:
            a = self.call(op, step)
            try:
                return self.check(step, a)
            except Failure:
                if time.monotonic() >= until:
                    raise
            time.sleep(0.05)


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"conformance: {name} is not set (run me through clients/conformance/run.sh)")
    return v


def main() -> int:
    addr, store, prefix = env("CONFORMANCE_ADDR"), env("CONFORMANCE_STORE"), env("CONFORMANCE_PREFIX")
    control = shlex.split(env("CONFORMANCE_CONTROL"))
    only = [n for n in os.environ.get("CONFORMANCE_ONLY", "").split(",") if n]
    with open(env("CONFORMANCE_CASES")) as f:
        doc = json.load(f)
    passed = failed_n = skipped = 0
    # Cases that need the local read path use a client that reads the
    # published cache (the others keep asserting the gRPC answers).
    local_path = os.environ.get("CONFORMANCE_LOCAL_PATH", "")
    local_client = cachecar.Client(addr, local_read_path=local_path) if local_path else None
    with cachecar.Client(addr) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        for kase in doc["cases"]:
            name = kase["name"]
            if only and name not in only:
                continue
            if "stores" in kase and store not in kase["stores"]:
                print(f"skip - {name} (not for the {store} store)", flush=True)
                skipped += 1
                continue
            uses_local = "local" in kase.get("requires", [])
            if uses_local and local_client is None:
                print(f"skip - {name} (this cachecar publishes no cache: no --local-read-path)",
                      flush=True)
                skipped += 1
                continue
            run = CaseRun(local_client if uses_local else client, prefix + name + ":", control, pool)
            i, op = 0, ""
            try:
                for i, s in enumerate(kase["steps"], 1):
                    op = s["op"]
                    run.step(s)
                print(f"ok - {name}", flush=True)
                passed += 1
            except Failure as f:
                print(f"FAIL - {name}: step {i} ({op}): {f}", flush=True)
                failed_n += 1
                # Undo what the case left (a lock, a stopped sidecar or broker)
                # before its open calls are waited for.
                if subprocess.call(control + ["reset"], stdout=sys.stderr) != 0:
                    print("# control reset failed", flush=True)
            run.close()
    if local_client is not None:
        local_client.close()
    print(f"{passed} passed, {failed_n} failed, {skipped} skipped", flush=True)
    return 1 if failed_n else 0


if __name__ == "__main__":
    sys.exit(main())
