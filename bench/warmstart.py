#!/usr/bin/env python3
"""Warm start bench (issue #15 item 3): how fast a restarted replica gets its
hit ratio back, with warm_start_file and without (cold), side by side in
one run on one PostgreSQL + Kafka.

    python3 bench/warmstart.py --build build [--keys 100000] [--seconds 15]

It seeds --keys rows (100-byte values) by SQL, starts a replica with
--warm-start-file, reads every key once (BatchGets) so the replica caches the
working set, measures the hit ratio of uniform random Gets for 3 s
("before"), stops it with SIGTERM (the file is written), then for each of
warm (the file kept) and cold (the file removed) starts the replica again
together with cachecar_warm_probe and records the hit ratio per 0.5 s from
the start. Reported: seconds from the start until an interval's hit ratio
is >= 90 % of before, the hit ratio at 5 s and 10 s, and the server's CPU
per Get over the window. Prints markdown; --json writes the raw intervals.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path):
    env = {}
    for line in open(path):
        if "=" in line:
            k, v = line.strip().split("=", 1)
            env[k] = v.strip("'\"")
    return env


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="cachecar-warmstart-")
        self.cachecar = os.path.join(args.build, "cmd/cachecar/cachecar")
        self.probe = os.path.join(args.build, "bench/load/cachecar_warm_probe")
        self.pg = self.kafka = None

    def log(self, msg):
        print(f"[warmstart] {msg}", file=sys.stderr, flush=True)

    def start_deps(self):
        d = os.path.join(self.work, "pg")
        subprocess.run(["bash", f"{ROOT}/tests/pg/pg.sh", "start", d], check=True, stdout=subprocess.DEVNULL)
        self.pg = read_env(os.path.join(d, "env"))
        self.pg["dir"] = d
        d = os.path.join(self.work, "kafka")
        subprocess.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "start", d], check=True, stdout=subprocess.DEVNULL)
        self.kafka = read_env(os.path.join(d, "env"))
        self.kafka["dir"] = d
        subprocess.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "create-topic", d, "warm-sync", "1"],
                       check=True, stdout=subprocess.DEVNULL)

    def psql(self, sql):
        return subprocess.run(shlex.split(self.pg["PSQL"]) + ["-At", "-c", sql], check=True,
                              capture_output=True, text=True).stdout.strip()

    def seed(self):
        subprocess.run([self.cachecar, "migrate", "--store=postgres", "--postgres-dsn", self.pg["PG_DSN"]],
                       check=True, stdout=subprocess.DEVNULL)
        self.psql("INSERT INTO cachecar_entries (namespace, key, value) SELECT 'default', "
                  "'key:' || lpad(i::text, 12, '0'), convert_to(repeat('v', 100), 'UTF8') "
                  f"FROM generate_series(0, {self.args.keys - 1}) i")

    def cmd(self, port, metrics, warm_file):
        return [self.cachecar, "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics}",
                "--log-level", "info", "--store=postgres", "--postgres-dsn", self.pg["PG_DSN"],
                "--kafka-brokers", self.kafka["KAFKA_BOOTSTRAP"], "--sync-topic", "warm-sync",
                "--replica-id", "warm", "--warm-start-file", warm_file]

    def metric(self, metrics, name):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_fresh(self, metrics):
        for _ in range(1200):
            if self.metric(metrics, "cachecar_sync_bypass") == 0:
                return
            time.sleep(0.05)
        raise SystemExit("the replica never came within max_staleness")

    def probe_run(self, port, seconds, threads):
        out = subprocess.run([self.probe, f"--target=127.0.0.1:{port}", f"--keys={self.args.keys}",
                              f"--threads={threads}", f"--seconds={seconds}", "--interval=0.5"],
                             check=True, capture_output=True, text=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def stop(self, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)

    def run(self):
        a = self.args
        self.start_deps()
        self.seed()
        warm_file = os.path.join(self.work, "warm-keys")
        port, metrics = free_port(), free_port()
        log = open(os.path.join(self.work, "first.log"), "w")
        p = subprocess.Popen(self.cmd(port, metrics, warm_file), stdout=log, stderr=subprocess.STDOUT)
        self.wait_fresh(metrics)
        pre = subprocess.run([self.probe, f"--target=127.0.0.1:{port}", f"--keys={a.keys}", "--prewarm"],
                             check=True, capture_output=True, text=True).stdout
        self.log(f"prewarm: {pre.strip()}")
        before = self.probe_run(port, 3, a.threads)
        b_calls = sum(r["calls"] for r in before)
        b_ratio = sum(r["hits"] for r in before) / max(1, b_calls)
        self.log(f"before: hit ratio {b_ratio:.4f} over {b_calls} Gets")
        self.stop(p)
        saved = open(os.path.join(self.work, "first.log")).read()
        self.log([l for l in saved.splitlines() if "warm start: saved" in l][-1][-120:])
        shutil.copy(warm_file, warm_file + ".keep")
        results = {}
        for mode in ("warm", "cold", "warm2", "cold2"):
            if mode.startswith("warm"):
                shutil.copy(warm_file + ".keep", warm_file)
            elif os.path.exists(warm_file):
                os.remove(warm_file)
            port, metrics = free_port(), free_port()
            log = open(os.path.join(self.work, f"{mode}.log"), "w")
            t0 = time.time()
            p = subprocess.Popen(self.cmd(port, metrics, warm_file), stdout=log, stderr=subprocess.STDOUT)
            cpu0 = 0.0
            rows = self.probe_run(port, a.seconds, a.threads)
            cpu = cpu_seconds(p.pid) - cpu0
            loaded = self.metric(metrics, 'cachecar_warm_start_keys_total{result="loaded"}')
            self.stop(p)
            calls = sum(r["calls"] for r in rows)
            target = 0.9 * b_ratio
            reached = next((r["t"] for r in rows if r["calls"] and r["hits"] / r["calls"] >= target), None)
            at = lambda s: next((r["hits"] / max(1, r["calls"]) for r in rows if abs(r["t"] - s) < 1e-6), None)
            results[mode] = {"rows": rows, "reached_s": reached, "at5": at(5.0), "at10": at(10.0),
                             "calls": calls, "cpu_us_per_get": 1e6 * cpu / max(1, calls), "loaded": loaded,
                             "started": t0}
            self.log(f"{mode}: >= 90% of before at {reached} s; at 5 s {at(5.0)}, at 10 s {at(10.0)}; "
                     f"warm keys loaded {loaded}")
        print(f"\nWarm start, {a.keys} keys (100-byte values), uniform random Gets from {a.threads} "
              f"client threads; before the restart: hit ratio {100 * b_ratio:.2f} % over {b_calls} Gets.\n")
        print("| restart | ≥ 90 % of before after | hit ratio at 5 s | at 10 s | Gets in the "
              f"{a.seconds:g} s | server CPU per Get | warm keys loaded |")
        print("|---|---|---|---|---|---|---|")
        for mode, r in results.items():
            reached = f"{r['reached_s']:.1f} s" if r["reached_s"] is not None else f"not within {a.seconds:g} s"
            pct = lambda v: "–" if v is None else f"{100 * v:.1f} %"
            print(f"| {mode} | {reached} | {pct(r['at5'])} | {pct(r['at10'])} | {r['calls']} | "
                  f"{r['cpu_us_per_get']:.0f} µs | {int(r['loaded'] or 0)} |")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"before": b_ratio, "results": results}, f)

    def cleanup(self):
        if self.kafka:
            subprocess.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "stop", self.kafka["dir"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pg:
            subprocess.run(["bash", f"{ROOT}/tests/pg/pg.sh", "stop", self.pg["dir"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            self.log(f"logs kept in {self.work}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--json")
    ap.add_argument("--keep-work", action="store_true")
    b = Bench(ap.parse_args())
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
