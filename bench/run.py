#!/usr/bin/env python3
"""The benchmark harness: cachecar beside its peers, in one run, on one machine.

Started by bench/run.sh (which installs the peers and builds the binaries).
It starts a throwaway PostgreSQL 15 (tests/pg/pg.sh), a one-node Kafka
(tests/kafka/kafka.sh), redis-server and cachecar replicas on loopback, runs
the sections below, and writes markdown tables (docs/BENCHMARKS.md is made
from them) plus every raw measurement as JSON lines.

Sections: hit (Get hit vs the gRPC floor vs Redis GET vs PostgreSQL PK SELECT,
plus BatchGet, the Go client and ghz; with --before-cachecar, an earlier build
in the same run; ends with issue #13's read goals), models (the serving-model
floors behind cachecar's choice: async/callback/sync and what extra services
or threads do to them), write (Put vs a bare upsert), propagation (Put on A -> Watch on B), stampede (1000 cold Gets
-> PostgreSQL queries), local (local reads from the published cache vs the
gRPC Get with local_read_path on and off vs Redis vs PostgreSQL, and the hit
ratio of a trace with local reads vs through gRPC), engine (bench/engine.sh: microbenchmarks, hit ratio,
memory per entry).

Pinning (hit section): cachecar, PostgreSQL with its backends and Redis run
on core 0 and every load generator (cachecar_load, redis-benchmark, pgbench,
ghz) on core 1, so a peer and cachecar get the same single core. The write
and propagation sections are not pinned: a Put involves cachecar, PostgreSQL
and the Kafka broker in turn, and squeezed onto one core they wait for each
other's time slices (a Put's p50 went from 0.4 ms to 16 ms that way).

Server CPU per request comes from /proc (utime + stime of the process and its
children, reaped ones included) over the whole run, warm-up included, divided
by every request made.
"""
import argparse
import glob
import json
import os
import platform
import resource
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
SERVER_CPUS = "0"
CLIENT_CPUS = "1"
VALUE_BYTES = 100
KEYS = 1000


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path):
    env = {}
    for line in open(path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            env[k] = v.strip("'")
    return env


# --- CPU accounting from /proc -------------------------------------------------

def _proc_table():
    table = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat).read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        pid = int(stat.split("/")[2])
        # fields[0] is state (field 3); ppid is field 4, utime..cstime 14..17.
        table[pid] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def cpu_seconds(pids):
    """CPU time of `pids` and all their descendants, live and reaped."""
    table = _proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def voluntary_switches(pid):
    """Voluntary context switches of every thread of `pid` (live ones)."""
    total = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            for line in open(status):
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def polling_cpu_seconds(pid):
    """CPU of the threads of `pid` named grpc-poll-* (cachecar's and the
    floor's polling threads): the request path without background threads."""
    total = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            if not open(f"{task}/comm").read().startswith("grpc-poll"):
                continue
            text = open(f"{task}/stat").read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pin(pid, cpus):
    """Pins a process, all its threads and its existing children."""
    table = _proc_table()
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        todo.extend(c for c, (pp, _) in table.items() if pp == p)


def ratio(a, b):
    """a / b as a table cell; a dash when b measured nothing (a smoke run)."""
    return f"{a / b:.2f}" if b else "—"


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


# --- the run -------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.build = os.path.abspath(args.build_dir)
        self.cachecar = os.path.join(self.build, "cmd/cachecar/cachecar")
        self.load = os.path.join(self.build, "bench/load/cachecar_load")
        self.local_bench = os.path.join(self.build, "bench/local/cachecar_local_bench")
        self.floor = os.path.join(self.build, "bench/load/cachecar_floor")
        self.go_example = None
        self.last_switches = 0
        self.last_polling = 0
        self.work = tempfile.mkdtemp(prefix="cachecar-bench.")
        self.procs = []
        self.raw = []
        self.pg = None
        self.kafka = None
        self.out = []

    # ----- infrastructure
    def run(self, cmd, **kw):
        return subprocess.run(cmd, check=True, text=True, **kw)

    def spawn(self, cmd, log_name):
        f = open(os.path.join(self.work, log_name), "w")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def start_postgres(self):
        d = os.path.join(self.work, "pg")
        self.run(["bash", f"{ROOT}/tests/pg/pg.sh", "start", d], stdout=subprocess.DEVNULL)
        self.pg = read_env(os.path.join(d, "env"))
        self.pg["dir"] = d
        self.pg["postmaster"] = int(open(f"{self.pg['PG_ROOT']}/data/postmaster.pid").readline())
        self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.run([self.cachecar, "migrate", "--store=postgres", "--postgres-dsn", self.pg["PG_DSN"]],
                 stdout=subprocess.DEVNULL)
        self.psql("CREATE TABLE bench_upsert (namespace text NOT NULL, key text NOT NULL, "
                  "value bytea NOT NULL, version bigint NOT NULL, PRIMARY KEY (namespace, key))")

    def psql(self, sql):
        cmd = shlex.split(self.pg["PSQL"]) + ["-At", "-c", sql]
        return self.run(cmd, capture_output=True).stdout.strip()

    def start_kafka(self):
        d = os.path.join(self.work, "kafka")
        env = dict(os.environ)
        # Full JIT for the broker (the test default stops at C1 to start fast).
        env.setdefault("KAFKA_JVM_OPTS", "-Xms512m -Xmx1g -XX:+UseG1GC")
        self.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "start", d], stdout=subprocess.DEVNULL, env=env)
        self.kafka = read_env(os.path.join(d, "env"))
        self.kafka["dir"] = d
        self.kafka["pid"] = int(open(os.path.join(self.kafka["KAFKA_ROOT"], "kafka.pid")).read())
        self.topic_count = 0

    def new_topic(self):
        self.topic_count += 1
        name = f"bench-sync-{self.topic_count}"
        self.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "create-topic", self.kafka["dir"], name, "1"],
                 stdout=subprocess.DEVNULL)
        return name

    def start_redis(self):
        port = free_port()
        sock = os.path.join(self.work, "redis.sock")
        p = self.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--unixsocket", sock, "--unixsocketperm", "700"],
                       "redis.log")
        self.wait_port(port, p, "redis-server")
        self.redis = {"port": port, "sock": sock, "pid": p.pid}
        # Same keys as cachecar's: key:%012d (redis-benchmark -r's format), 100 B values.
        value = "v" * VALUE_BYTES
        cmds = "".join(
            f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(value)}\r\n{value}\r\n"
            for k in (f"key:{i:012d}" for i in range(KEYS)))
        self.run(["redis-cli", "-p", str(port), "--pipe"], input=cmds, capture_output=True)

    def wait_port(self, port, proc, what):
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited: see {self.work}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"{what} did not listen on {port}")

    def start_cachecar(self, name, extra, kafka_properties=None, binary=None, dsn=None):
        port, metrics = free_port(), free_port()
        sock = os.path.join(self.work, f"{name}.sock")
        cmd = [binary or self.cachecar, "--listen", f"127.0.0.1:{port}", "--listen", f"unix://{sock}",
               "--metrics-listen", f"127.0.0.1:{metrics}", "--log-level", "warning",
               "--store=postgres", "--postgres-dsn", dsn or self.pg["PG_DSN"],
               "--replica-id", name] + extra
        for prop in kafka_properties or []:
            cmd += ["--kafka-property", prop]
        p = self.spawn(cmd, f"cachecar-{name}.log")
        self.wait_port(port, p, f"cachecar {name}")
        replica = {"name": name, "tcp": f"127.0.0.1:{port}", "uds": f"unix://{sock}",
                   "pid": p.pid, "proc": p, "metrics": metrics}
        if "--kafka-brokers" in extra:
            self.wait_positioned(replica)
        return replica

    def kafka_args(self, topic):
        return ["--kafka-brokers", self.kafka["KAFKA_BOOTSTRAP"], "--sync-topic", topic]

    def metric(self, replica, name):
        """A metric's value; `name` may carry labels exactly as exposed."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{replica['metrics']}/metrics", timeout=5).read()
        for line in text.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_positioned(self, replica):
        for _ in range(300):
            if self.metric(replica, "cachecar_sync_positioned") == 1 and \
                    self.metric(replica, "cachecar_sync_bypass") == 0:
                return
            time.sleep(0.05)
        raise SystemExit(f"cachecar {replica['name']} never positioned on the sync topic")

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                self.stop(p)
            except Exception:  # cleanup goes on whatever one process did
                pass
        if self.kafka:
            subprocess.run(["bash", f"{ROOT}/tests/kafka/kafka.sh", "stop", self.kafka["dir"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pg:
            subprocess.run(["bash", f"{ROOT}/tests/pg/pg.sh", "stop", self.pg["dir"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.args.keep_work:
            log(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ----- measuring
    def measured(self, server_pids, cmd, cpus=CLIENT_CPUS):
        """Runs a load generator; returns (stdout, server CPU s, client CPU s).
        self.last_switches: voluntary context switches of server_pids[0]."""
        switches = voluntary_switches(server_pids[0]) if server_pids else 0
        polling = polling_cpu_seconds(server_pids[0]) if server_pids else 0
        before_server, before_client = cpu_seconds(server_pids), children_cpu()
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n"
                             f"{done.stdout}{done.stderr}")
        out = done.stdout
        self.last_switches = (voluntary_switches(server_pids[0]) - switches) if server_pids else 0
        self.last_polling = (polling_cpu_seconds(server_pids[0]) - polling) if server_pids else 0
        time.sleep(0.2)  # let PostgreSQL reap the backends pgbench used
        return out, cpu_seconds(server_pids) - before_server, children_cpu() - before_client

    def cachecar_load(self, server_pids, mode, target, cpus=CLIENT_CPUS, **flags):
        cmd = [self.load, mode, f"--target={target}"] + [
            f"--{k.replace('_', '-')}={v}" for k, v in flags.items()]
        out, server, client = self.measured(server_pids, cmd, cpus=cpus)
        r = json.loads(out.strip().splitlines()[-1])
        r["server_cpu_us"] = server * 1e6 / max(1, r["calls"])
        r["client_cpu_us"] = client * 1e6 / max(1, r["calls"])
        r["switches_per_call"] = self.last_switches / max(1, r["calls"])
        r["polling_cpu_us"] = self.last_polling * 1e6 / max(1, r["calls"])
        if r["errors"]:
            raise SystemExit(f"cachecar_load {mode} failed: {r['first_error']}")
        return r

    def redis_benchmark(self, transport, inflight, seconds):
        rate = 25000 if inflight == 1 else 120000
        rate = min(rate, self.args.redis_rate) if self.args.redis_rate else rate
        n = max(2000, int(rate * seconds))
        where = ["-s", self.redis["sock"]] if transport == "uds" else ["-h", "127.0.0.1", "-p", str(self.redis["port"])]
        cmd = ["redis-benchmark"] + where + ["-t", "get", "-n", str(n), "-c", str(inflight),
                                             "-d", str(VALUE_BYTES), "-r", str(KEYS), "-P", "1", "--csv"]
        out, server, client = self.measured([self.redis["pid"]], cmd)
        row = [line for line in out.splitlines() if line.startswith('"GET"')][0]
        f = [float(x.strip('"')) for x in row.split(",")[1:]]
        return {"rps": f[0], "p50_us": f[3] * 1000, "p99_us": f[5] * 1000, "calls": n,
                "server_cpu_us": server * 1e6 / n, "client_cpu_us": client * 1e6 / n}

    def pgbench(self, script_sql, transport, inflight, seconds, name, cpus=CLIENT_CPUS, db="cachecar_test"):
        script = os.path.join(self.work, f"{name}.sql")
        with open(script, "w") as f:
            f.write(script_sql)
        host = self.pg["PG_ROOT"] if transport == "uds" else "127.0.0.1"
        base = ["pgbench", "-n", "-M", "prepared", "-h", host, "-p", self.pg["PG_PORT"], "-U", "postgres",
                "-c", str(inflight), "-j", "1", "-f", script]
        if not self.smoke:  # warm the backends' plan caches and the buffer cache
            self.run(base + ["-T", "1", db], capture_output=True)
        prefix = os.path.join(self.work, f"pgb-{name}-{transport}-{inflight}")
        cmd = base + ["-T", str(max(1, int(seconds))), "-l", f"--log-prefix={prefix}", db]
        out, server, client = self.measured([self.pg["postmaster"]], cmd, cpus=cpus)
        latencies = []
        for path in glob.glob(prefix + "*"):
            for line in open(path):
                latencies.append(int(line.split()[2]))
            os.unlink(path)
        # A run too short (or a machine too busy) for one transaction prints no tps.
        tps_lines = [l for l in out.splitlines() if l.startswith("tps")]
        tps = float(tps_lines[0].split()[2]) if tps_lines else 0.0
        n = len(latencies)
        return {"rps": tps, "p50_us": percentile(latencies, 50), "p99_us": percentile(latencies, 99),
                "calls": n, "server_cpu_us": server * 1e6 / max(1, n), "client_cpu_us": client * 1e6 / max(1, n)}

    def ghz(self, server_pids, target, inflight, seconds):
        ghz = shutil.which("ghz") or "/tmp/ghzbin/ghz"
        if not os.path.exists(ghz):
            return None
        n = max(1000, int((8000 if inflight == 1 else 20000) * seconds))
        cmd = [ghz, "--insecure", "--format=json", "-n", str(n), "-c", str(inflight),
               "--call", "cachecar.v1.Cache/Get", "-d", '{"key":"key:000000000001"}', target]
        out, server, client = self.measured(server_pids, cmd)
        r = json.loads(out)
        p = {x["percentage"]: x["latency"] / 1000 for x in r["latencyDistribution"]}
        return {"rps": r["rps"], "p50_us": p[50], "p99_us": p[99], "calls": n,
                "server_cpu_us": server * 1e6 / n, "client_cpu_us": client * 1e6 / n}

    def go_client(self, server_pids, target, inflight, seconds, warmup):
        """The Go example client (examples/go, -load-seconds) as the load."""
        cmd = [self.go_example, f"-addr={target}", f"-load-seconds={seconds}s",
               f"-load-warmup={warmup}s", f"-load-inflight={inflight}", f"-load-keys={KEYS}"]
        out, server, client = self.measured(server_pids, cmd)
        r = json.loads(out.strip().splitlines()[-1])
        if r["errors"]:
            raise SystemExit(f"Go client failed: {r['first_error']}")
        calls = max(1, r["calls"])
        r.update(server_cpu_us=server * 1e6 / calls, client_cpu_us=client * 1e6 / calls,
                 switches_per_call=self.last_switches / calls,
                 polling_cpu_us=self.last_polling * 1e6 / calls)
        return r

    def build_go_example(self):
        """Builds examples/go into the build dir; None if Go is missing."""
        go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
        if go is None:
            log("no Go: the grpc-go row is left out")
            return None
        out = os.path.join(self.build, "bench", "cachecar-example-go")
        env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
                   GOPATH=os.path.join(self.build, "bench", "gopath"))
        self.run([go, "build", "-o", out, "."], cwd=os.path.join(ROOT, "examples", "go"), env=env,
                 stdout=subprocess.DEVNULL)
        return out

    def start_floor(self, name, args):
        """cachecar_floor (bench/load/floor_server.cc) on TCP and a unix socket."""
        port = free_port()
        sock = os.path.join(self.work, f"floor-{name}.sock")
        p = subprocess.Popen([self.floor, f"--listen=127.0.0.1:{port}", f"--listen=unix://{sock}"] + args,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.procs.append(p)
        if p.stdout.readline().strip() != "listening":
            raise SystemExit(f"cachecar_floor {args} did not start")
        return {"name": name, "tcp": f"127.0.0.1:{port}", "uds": f"unix://{sock}", "pid": p.pid, "proc": p}

    def record(self, section, measurement, **labels):
        row = {**measurement, **labels, "section": section}
        self.raw.append(row)
        return row

    # ----- sections
    def section_hit(self):
        secs, warm = (0.5, 0.1) if self.smoke else (self.args.seconds, 1)
        topic = self.new_topic()
        replica = self.start_cachecar("hit", self.kafka_args(topic))
        self.cachecar_load([replica["pid"]], "fill", replica["tcp"], inflight=20, keys=KEYS)
        # The gRPC floor: a trivial server of cachecar's serving model.
        floor = self.start_floor("async", ["--model=async"])
        before = before_floor = None
        if self.args.before_cachecar:
            # An earlier build (the callback API) on the same data, and its model's floor.
            before = self.start_cachecar("hit-before", self.kafka_args(topic),
                                         binary=os.path.abspath(self.args.before_cachecar))
            before_floor = self.start_floor("callback", ["--model=callback"])
            # Its own cache is empty: fill it the same way (the rows exist).
            self.cachecar_load([before["pid"]], "fill", before["tcp"], inflight=20, keys=KEYS)
        if not self.smoke and self.go_example is None:
            self.go_example = self.build_go_example()
        # The broker stays on both cores: it only serves the replicas' idle fetches here.
        servers = [replica["pid"], floor["pid"], self.pg["postmaster"], self.redis["pid"]]
        servers += [x["pid"] for x in (before, before_floor) if x]
        for pid in servers:
            pin(pid, SERVER_CPUS)
        sql = ("\\set id random(0, %d)\n"
               "SELECT value FROM cachecar_entries WHERE namespace = 'default' "
               "AND key = 'key:' || lpad(:id::text, 12, '0');\n" % (KEYS - 1))
        rows = []

        def get(system, server, transport, inflight, mode="get", **flags):
            r = self.cachecar_load([server["pid"]], mode, server[transport], inflight=inflight,
                                   seconds=secs, warmup=warm, keys=KEYS, **flags)
            # A replica bypasses to the store while it cannot vouch for
            # max_staleness (C4): on an overloaded machine the relays'
            # watermarks can arrive late and a few Gets do. Reported in the
            # row; only a hit path that mostly misses is an error.
            if r["from_store"] > max(5, 0.01 * r["calls"]):
                raise SystemExit(f"hit path: {r['from_store']} of {r['calls']} Gets of {system} "
                                 "were answered by the store")
            if r["from_store"]:
                log(f"hit path: {system}: {r['from_store']} of {r['calls']} Gets bypassed to the store")
            rows.append(self.record("hit", r, system=system, transport=transport, inflight=inflight))

        for transport in ("tcp", "uds"):
            for inflight in (1, 50):
                log(f"hit path: {transport}, {inflight} in flight")
                get("cachecar Get", replica, transport, inflight)
                get("gRPC floor (async)", floor, transport, inflight)
                if before:
                    get("cachecar Get, before (callback API)", before, transport, inflight)
                    get("gRPC floor (callback)", before_floor, transport, inflight)
                r = self.redis_benchmark(transport, inflight, secs)
                rows.append(self.record("hit", r, system="Redis GET", transport=transport, inflight=inflight))
                r = self.pgbench(sql, transport, inflight, secs, "select")
                rows.append(self.record("hit", r, system="PostgreSQL PK SELECT", transport=transport,
                                        inflight=inflight))
                for batch in (10, 100):
                    get(f"cachecar BatchGet of {batch}", replica, transport, inflight,
                        mode="batchget", batch=batch)
                if self.go_example:
                    r = self.go_client([replica["pid"]], replica[transport], inflight, secs, warm)
                    rows.append(self.record("hit", r, system="cachecar Get (grpc-go client)",
                                            transport=transport, inflight=inflight))
        if self.args.ghz:
            for inflight in (1, 50):
                log(f"hit path: ghz, {inflight} in flight")
                r = self.ghz([replica["pid"]], replica["tcp"], inflight, secs)
                if r:
                    r["switches_per_call"] = self.last_switches / max(1, r["calls"])
                    rows.append(self.record("hit", r, system="cachecar Get (ghz client)", transport="tcp",
                                            inflight=inflight))
        for pid in servers:
            pin(pid, "0-%d" % (os.cpu_count() - 1))
        for x in (replica, floor, before, before_floor):
            if x:
                self.stop(x["proc"])
        self.emit_latency_table(
            "Hit path: Get of a cached key (100 B values) vs the gRPC floor vs Redis GET vs "
            "PostgreSQL PK SELECT",
            rows, cpu_note="server CPU: the cachecar process / cachecar_floor / redis-server / the "
                           "PostgreSQL postmaster and its backends; BatchGet rows count calls "
                           "(each answers 10 or 100 Gets)")
        self.emit_hit_ratios(rows)
        self.emit_goals(rows)

    def section_models(self):
        """The serving-model floors: cachecar_floor in each model, same run."""
        secs, warm = (0.5, 0.1) if self.smoke else (3, 0.5)
        probe = f"127.0.0.1:{free_port()}"
        variants = [
            ("async, 1 polling thread (cachecar's model)", ["--model=async"]),
            ("async, 2 polling threads", ["--model=async", "--threads=2"]),
            ("async + a callback-API service on the same server", ["--model=async", "--extra=callback"]),
            ("async + a sync service on the same server", ["--model=async", "--extra=sync"]),
            ("async + a second server polled by its own thread", ["--model=async", f"--probe={probe}"]),
            ("callback API (cachecar before #13)", ["--model=callback"]),
            ("sync server, gRPC's defaults", ["--model=sync"]),
        ]
        rows = []
        for label, args in variants:
            server = self.start_floor("model", args)
            pin(server["pid"], SERVER_CPUS)
            for transport in ("tcp", "uds"):
                for inflight in (1, 50):
                    log(f"models: {label}, {transport}, {inflight} in flight")
                    r = self.cachecar_load([server["pid"]], "get", server[transport], inflight=inflight,
                                           seconds=secs, warmup=warm, keys=KEYS)
                    rows.append(self.record("models", r, system=label, transport=transport, inflight=inflight))
            self.stop(server["proc"])
        self.out.append("### Serving models: the gRPC floor of each (cachecar_floor, same run)\n")
        self.out.append(f"A trivial Cache.Get server (fixed 100-byte answer) pinned to core {SERVER_CPUS}, "
                        f"cachecar_load on core {CLIENT_CPUS}. Server CPU per call from /proc; context "
                        "switches: the server's voluntary switches per call (every thread).\n")
        self.out.append("| serving model | transport | in flight | p50 µs | req/s | server CPU µs/req | "
                        "server switches/req |")
        self.out.append("|---|---|---|---|---|---|---|")
        for r in rows:
            self.out.append(f"| {r['system']} | {r['transport'].upper()} | {r['inflight']} | {r['p50_us']:.0f} | "
                            f"{r['rps']:.0f} | {r['server_cpu_us']:.1f} | {r['switches_per_call']:.2f} |")
        self.out.append("")

    # The statement each cachecar build sends for a Put of a fresh key (see
    # src/store/postgres/schema.cc StatementsFor), as a pgbench script: the
    # "same upsert, triggers included". BASELINE is the one before the
    # writer mark (issue #12/#13 round), for --baseline-build-dir runs.
    PUT_SQL = {
        "current": ("INSERT INTO cachecar_entries (namespace, key, value) VALUES ('default', "
                    "'{key}' || :k, CASE WHEN set_config('cachecar.writer', 'on', true) = 'on' "
                    "THEN E'{value}'::bytea END) ON CONFLICT (namespace, key) DO UPDATE SET "
                    "value = EXCLUDED.value, version = nextval('cachecar_version_seq'), "
                    "updated_at = now() RETURNING version;"),
        "baseline": ("INSERT INTO cachecar_entries (namespace, key, value) VALUES ('default', "
                     "'{key}' || :k, E'{value}'::bytea) ON CONFLICT (namespace, key) DO UPDATE "
                     "SET value = EXCLUDED.value RETURNING version;"),
    }

    def upsert_script(self, which):
        value_hex = "\\\\x" + "76" * VALUE_BYTES
        if which == "bare":
            return ("\\set k random(1, 2000000000)\n"
                    "INSERT INTO bench_upsert (namespace, key, value, version) "
                    f"VALUES ('default', 'put:' || :k, E'{value_hex}', 1) "
                    "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, "
                    "version = bench_upsert.version + 1;\n")
        sql = self.PUT_SQL[which].format(key=f"pgb-{which}:", value=value_hex)
        return "\\set k random(1, 2000000000)\n" + sql + "\n"

    def migrated_database(self, name, binary):
        """A fresh database with the schema `binary` migrates (its triggers); its DSN."""
        self.psql(f"CREATE DATABASE {name}")
        dsn = self.pg["PG_DSN"].replace("dbname=cachecar_test", f"dbname={name}")
        self.run([binary, "migrate", "--store=postgres", "--postgres-dsn", dsn],
                 stdout=subprocess.DEVNULL)
        return dsn

    def baseline_database(self):
        """Databases migrated by the baseline build: one for its cachecar, one
        for pgbench (no relay acts on it), or None."""
        if not self.args.baseline_build_dir:
            return None
        binary = os.path.join(os.path.abspath(self.args.baseline_build_dir), "cmd/cachecar/cachecar")
        self.migrated_database("bench_baseline_same", binary)
        return {"binary": binary, "dsn": self.migrated_database("bench_baseline", binary)}

    def section_write(self):
        secs, warm = (0.5, 0.1) if self.smoke else (5, 1)
        topic = self.new_topic()
        synced = self.start_cachecar("write-kafka", self.kafka_args(topic))
        plain = self.start_cachecar("write-plain", [])
        # pgbench's "same upsert" goes to a database of its own, with the
        # same triggers, where no relay publishes what it writes.
        self.migrated_database("bench_same", self.cachecar)
        baseline = self.baseline_database()
        old = None
        if baseline:
            old = self.start_cachecar("write-baseline", self.kafka_args(self.new_topic()),
                                      binary=baseline["binary"], dsn=baseline["dsn"])
        rows = []
        rounds = 1 if self.smoke else 2  # alternated: before/after in the same run, twice
        for _ in range(rounds):
            for inflight in (1, 50):
                log(f"write path: {inflight} in flight")
                pg = [self.pg["postmaster"]]
                r = self.cachecar_load([synced["pid"], *pg, self.kafka["pid"]], "put",
                                       synced["tcp"], cpus=None, inflight=inflight, seconds=secs,
                                       warmup=warm)
                rows.append(self.record("write", r, system="cachecar Put (PostgreSQL commit + outbox + Kafka publish)",
                                        transport="tcp", inflight=inflight, build="current"))
                r = self.pgbench(self.upsert_script("current"), "tcp", inflight, secs, "same-upsert",
                                 cpus=None, db="bench_same")
                rows.append(self.record("write", r, system="PostgreSQL: the same upsert, triggers included (pgbench)",
                                        transport="tcp", inflight=inflight, build="current"))
                if old:
                    r = self.cachecar_load([old["pid"], *pg, self.kafka["pid"]], "put", old["tcp"],
                                           cpus=None, inflight=inflight, seconds=secs, warmup=warm)
                    rows.append(self.record("write", r, system="before: cachecar Put (PostgreSQL commit + outbox + Kafka publish)",
                                            transport="tcp", inflight=inflight, build="baseline"))
                    r = self.pgbench(self.upsert_script("baseline"), "tcp", inflight, secs,
                                     "same-upsert-before", cpus=None, db="bench_baseline_same")
                    rows.append(self.record("write", r, system="before: the same upsert, triggers included (pgbench)",
                                            transport="tcp", inflight=inflight, build="baseline"))
                r = self.cachecar_load([plain["pid"], *pg], "put", plain["tcp"],
                                       cpus=None, inflight=inflight, seconds=secs, warmup=warm)
                rows.append(self.record("write", r, system="cachecar Put, no sync (PostgreSQL commit)",
                                        transport="tcp", inflight=inflight, build="current"))
                r = self.pgbench(self.upsert_script("bare"), "tcp", inflight, secs, "upsert", cpus=None)
                rows.append(self.record("write", r, system="PostgreSQL bare upsert (pgbench)", transport="tcp",
                                        inflight=inflight, build="current"))
        for proc in (synced, plain, old):
            if proc:
                self.stop(proc["proc"])
        self.emit_latency_table(
            "Write path: Put vs the same upsert vs a bare PostgreSQL upsert (100 B values, fresh keys)", rows,
            pinned=False,
            cpu_note="server CPU: cachecar + PostgreSQL (+ the Kafka broker for the synced rows); "
                     "PostgreSQL runs with fsync=off, synchronous_commit=off (tests/pg/pg.sh)")
        self.emit_write_ratios(rows)

    def emit_write_ratios(self, rows):
        """Put ÷ the same upsert, and the triggers' own cost (same upsert ÷ bare), per build."""
        def median_of(system, inflight, key):
            values = sorted(r[key] for r in rows if r["system"] == system and r["inflight"] == inflight)
            return values[len(values) // 2] if values else None
        self.out.append("Ratios (medians over the rounds; goal: Put at 1 in flight ≤ 1.5 × the same upsert):\n")
        self.out.append("| build | in flight | Put ÷ same upsert, p50 | Put ÷ same upsert, server CPU | "
                        "same upsert ÷ bare upsert, p50 | same upsert ÷ bare upsert, PostgreSQL CPU |")
        self.out.append("|---|---|---|---|---|---|")
        for prefix, build in (("", "current"), ("before: ", "baseline")):
            for inflight in (1, 50):
                put = (prefix + "cachecar Put (PostgreSQL commit + outbox + Kafka publish)"
                       if prefix else "cachecar Put (PostgreSQL commit + outbox + Kafka publish)")
                same = (prefix + "the same upsert, triggers included (pgbench)" if prefix
                        else "PostgreSQL: the same upsert, triggers included (pgbench)")
                bare = "PostgreSQL bare upsert (pgbench)"
                vals = [median_of(put, inflight, "p50_us"), median_of(same, inflight, "p50_us"),
                        median_of(put, inflight, "server_cpu_us"), median_of(same, inflight, "server_cpu_us"),
                        median_of(bare, inflight, "p50_us"), median_of(bare, inflight, "server_cpu_us")]
                if any(v is None or v == 0 for v in vals):
                    continue
                self.out.append(f"| {build} | {inflight} | {vals[0] / vals[1]:.2f} | {vals[2] / vals[3]:.2f} | "
                                f"{vals[1] / vals[4]:.2f} | {vals[3] / vals[5]:.2f} |")
        self.out.append("")

    def section_propagation(self):
        secs = 0.5 if self.smoke else 10
        rates = (100,) if self.smoke else (100, 1000)
        rows = []
        if not self.smoke:
            # A fresh broker JIT-compiles for its first tens of thousands of
            # messages; whichever variant ran first paid for it (p99 x10).
            topic = self.new_topic()
            a = self.start_cachecar("warm-a", self.kafka_args(topic))
            b = self.start_cachecar("warm-b", self.kafka_args(topic))
            log("propagation: warming the broker up (40000 writes, not measured)")
            self.cachecar_load([], "propagate", a["tcp"], reader=b["tcp"], cpus=None, rate=1000, seconds=40)
            self.stop(a["proc"])
            self.stop(b["proc"])
        rounds = 1 if self.smoke else 2  # alternated, to show the run-to-run spread
        for label, props in self.propagation_variants() * rounds:
            topic = self.new_topic()
            a = self.start_cachecar("prop-a", self.kafka_args(topic), kafka_properties=props)
            b = self.start_cachecar("prop-b", self.kafka_args(topic), kafka_properties=props)
            # Direct SQL writes (a relay publishes them) beside the Put path,
            # with cachecar's own settings.
            modes = ["propagate"] + (["propagate-sql"] if not props else [])
            for rate in rates:
                for mode in modes:
                    if mode == "propagate-sql" and rate > 100 and not self.args.sql_propagation_1000:
                        continue
                    via = "Put on A" if mode == "propagate" else "direct SQL INSERT"
                    log(f"propagation: {label}, {via}, {rate} writes/s")
                    parts = {"A": [a["pid"]], "B": [b["pid"]], "PostgreSQL": [self.pg["postmaster"]],
                             "Kafka": [self.kafka["pid"]]}
                    cpu_before = {k: cpu_seconds(v) for k, v in parts.items()}
                    stale = 'cachecar_sync_events_total{result="stale"}'
                    stale_before = self.metric(b, stale) or 0
                    relayed_before = self.metric(a, "cachecar_outbox_relayed_total") or 0
                    relayed_before += self.metric(b, "cachecar_outbox_relayed_total") or 0
                    flags = {"sql_dsn": self.pg["PG_DSN"]} if mode == "propagate-sql" else {}
                    r = self.cachecar_load([a["pid"], b["pid"]], mode, a["tcp"], reader=b["tcp"],
                                           cpus=None, rate=rate, seconds=secs, **flags)
                    r["cpu_per_write_us"] = {k: (cpu_seconds(v) - cpu_before[k]) * 1e6 / r["writes"]
                                             for k, v in parts.items()}
                    r["relayed"] = (self.metric(a, "cachecar_outbox_relayed_total") or 0) + \
                        (self.metric(b, "cachecar_outbox_relayed_total") or 0) - relayed_before
                    r["b_stale"] = (self.metric(b, stale) or 0) - stale_before
                    rows.append(self.record("propagation", r, settings=label, via=via))
            self.stop(a["proc"])
            self.stop(b["proc"])
        self.out.append("### Propagation: a write (Put on replica A, or direct SQL) → seen by a Watch on replica B\n")
        self.out.append("Real Kafka (one broker, one partition), real PostgreSQL; latency from sending "
                        "the write (the Put to A, or the INSERT to PostgreSQL) to the WatchEvent arriving "
                        "from B. Unpinned. \"relayed\": outbox rows the relays "
                        "published (direct SQL: all of them; Puts: only those whose writer had not "
                        "retired them in time, duplicates).\n")
        self.out.append("| librdkafka settings | writes via | writes/s | writes | p50 ms | p99 ms | not seen on B | "
                        "skipped as stale on B | write p50 / p99 ms | relayed | "
                        "CPU µs per write: A / B / PostgreSQL / Kafka |")
        self.out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            cpu = r["cpu_per_write_us"]
            self.out.append(f"| {r['settings']} | {r['via']} | {r['rate']:.0f} | {r['writes']} | "
                            f"{r['p50_us']/1000:.2f} | "
                            f"{r['p99_us']/1000:.2f} | {r['missing']} | {r['b_stale']:.0f} | "
                            f"{r['put_p50_us']/1000:.2f} / {r['put_p99_us']/1000:.2f} | {r['relayed']:.0f} | "
                            f"{cpu['A']:.0f} / {cpu['B']:.0f} / {cpu['PostgreSQL']:.0f} / {cpu['Kafka']:.0f} |")
        self.out.append("")

    def propagation_variants(self):
        """(label, kafka properties) pairs: cachecar's defaults and the control."""
        if self.args.propagation_variant:
            return [(v.split(":", 1)[0], [p for p in v.split(":", 1)[1].split(",") if p])
                    for v in self.args.propagation_variant]
        librdkafka_defaults = ["linger.ms=5", "socket.nagle.disable=false",
                               "fetch.wait.max.ms=500", "fetch.error.backoff.ms=500"]
        return [("cachecar's defaults (linger.ms=1)", None),
                ("same with linger.ms=2", ["linger.ms=2"]),
                ("librdkafka defaults (control)", librdkafka_defaults)]

    def section_stampede(self):
        gets = 100 if self.smoke else 1000
        rounds = 1 if self.smoke else 3
        topic = self.new_topic()
        replica = self.start_cachecar("stampede", self.kafka_args(topic))
        rows = []
        for i in range(rounds):
            key_prefix = f"cold{i}-{os.getpid()}:"
            key = f"{key_prefix}000000000000"
            self.psql("INSERT INTO cachecar_entries (namespace, key, value) "
                      f"VALUES ('default', '{key}', '\\x{'76' * VALUE_BYTES}')")
            before = self.read_queries()
            log(f"stampede {i + 1}: {gets} Gets of {key}")
            r = self.cachecar_load([replica["pid"]], "stampede", replica["tcp"], requests=gets,
                                   key_prefix=key_prefix)
            r["pg_queries"] = self.read_queries() - before
            rows.append(self.record("stampede", r))
        self.stop(replica["proc"])
        self.out.append(f"### Stampede: {gets} concurrent Gets of one cold key\n")
        self.out.append("The key was inserted with psql (so no replica holds it); all Gets are started "
                        "before the first returns. PostgreSQL queries are counted by pg_stat_statements "
                        "(statements that read the key).\n")
        self.out.append("| round | Gets | PostgreSQL queries | replica loads | answered from cache | "
                        "p50 ms | p99 ms | all done in ms |")
        self.out.append("|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(rows):
            self.out.append(f"| {i + 1} | {r['requests']} | {r['pg_queries']} | {r['replica_loads']} | "
                            f"{r['from_cache']} | {r['p50_us']/1000:.2f} | {r['p99_us']/1000:.2f} | "
                            f"{r['seconds']*1000:.1f} |")
        self.out.append("")

    def local_hits(self, server_pids, command):
        """A local reader's `hits` run (cachecar_local_bench's JSON; other
        languages' readers print the same), pinned like the other clients."""
        out, server, client = self.measured(server_pids, command)
        r = json.loads(out.strip().splitlines()[-1])
        if r.get("fallbacks"):
            raise SystemExit(f"{' '.join(command)}: {r['fallbacks']} reads fell back")
        r["rps"] = r["hits_per_second"]
        r["server_cpu_us"] = server * 1e6 / max(1, r["calls"])
        r["client_cpu_us"] = client * 1e6 / max(1, r["calls"])
        return r

    def section_local(self):
        secs, warm = (0.5, 0.1) if self.smoke else (5, 1)
        topic = self.new_topic()
        path = os.path.join(self.work, "local", "cache")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        on = self.start_cachecar("local-on", self.kafka_args(topic) + ["--local-read-path", path])
        off = self.start_cachecar("local-off", self.kafka_args(topic))
        for replica in (on, off):
            self.cachecar_load([replica["pid"]], "fill", replica["tcp"], inflight=20, keys=KEYS)
        servers = [on["pid"], off["pid"], self.pg["postmaster"], self.redis["pid"]]
        for pid in servers:
            pin(pid, SERVER_CPUS)
        sql = ("\\set id random(0, %d)\n"
               "SELECT value FROM cachecar_entries WHERE namespace = 'default' "
               "AND key = 'key:' || lpad(:id::text, 12, '0');\n" % (KEYS - 1))
        rows = []
        log("local reads: C++ reader")
        cmd = [self.local_bench, "hits", f"--path={path}", f"--keys={KEYS}", f"--seconds={secs}",
               f"--value-bytes={VALUE_BYTES}"]
        rows.append(self.record("local", self.local_hits([on["pid"]], cmd),
                                system="cachecar local read (C++ reader)", transport="mmap", inflight=1))
        log("local reads: C++ client library (cachecar::client::Client::Get)")
        rows.append(self.record("local", self.local_hits([on["pid"]], cmd + ["--client", f"--target={on['tcp']}"]),
                                system="cachecar local read (C++ client Get)", transport="mmap", inflight=1))
        for spec in self.args.local_reader or []:
            name, command = spec.split("=", 1)
            log(f"local reads: {name}")
            cmd = shlex.split(command) + ["hits", f"--path={path}", f"--keys={KEYS}", f"--seconds={secs}",
                                          f"--value-bytes={VALUE_BYTES}", f"--target={on['tcp']}"]
            rows.append(self.record("local", self.local_hits([on["pid"]], cmd),
                                    system=f"cachecar local read ({name})", transport="mmap", inflight=1))
        for inflight in (1, 50):
            for transport in ("tcp", "uds"):
                if inflight == 50 and transport == "uds":
                    continue
                for label, replica in (("on", on), ("off", off)):
                    log(f"local reads: gRPC Get, local_read_path {label}, {transport}, {inflight} in flight")
                    r = self.cachecar_load([replica["pid"]], "get", replica[transport], inflight=inflight,
                                           seconds=secs, warmup=warm, keys=KEYS)
                    if r["from_store"]:
                        raise SystemExit(f"local section: {r['from_store']} Gets were answered by the store")
                    rows.append(self.record("local", r, system=f"cachecar Get (gRPC), local_read_path {label}",
                                            transport=transport, inflight=inflight))
                if inflight == 1:
                    rows.append(self.record("local", self.redis_benchmark(transport, 1, secs),
                                            system="Redis GET", transport=transport, inflight=1))
                    rows.append(self.record("local", self.pgbench(sql, transport, 1, secs, "select-local"),
                                            system="PostgreSQL PK SELECT", transport=transport, inflight=1))
        for pid in servers:
            pin(pid, "0-%d" % (os.cpu_count() - 1))
        self.stop(on["proc"])
        self.stop(off["proc"])
        self.emit_latency_table(
            "Local reads: a cached key read from the published cache vs the gRPC Get vs Redis vs "
            "PostgreSQL (100 B values)", rows,
            cpu_note="server CPU: the cachecar process (for local reads: its freshness publisher and "
                     "hit-report receiver while the app reads) / redis-server / the PostgreSQL postmaster "
                     "and its backends; client CPU: the reader or load generator",
            digits=3)
        ratios = self.local_hit_ratios()
        self.emit_local_goals(rows, ratios)

    def local_hit_ratios(self):
        """The same Zipf trace through gRPC only, with local reads, and with
        local reads but no hit reports, each on a cold replica of its own."""
        keys, requests = (2000, 6000) if self.smoke else (20000, 100000)
        value = "76" * VALUE_BYTES
        self.psql("INSERT INTO cachecar_entries (namespace, key, value) "
                  f"SELECT 'default', 'tr:' || lpad(i::text, 12, '0'), '\\x{value}' "
                  f"FROM generate_series(0, {keys - 1}) AS i ON CONFLICT DO NOTHING")
        small = ["--max-bytes", "1MiB", "--shards", "4", "--max-value-bytes", "1KiB"]
        out = []
        for label, local, reports in (("gRPC only", False, True), ("local reads", True, True),
                                      ("local reads, no hit reports", True, False)):
            name = "trace-" + label.replace(" ", "-").replace(",", "")
            path = os.path.join(self.work, name, "cache")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            extra = small + (["--local-read-path", path] if local else [])
            replica = self.start_cachecar(name, extra)
            cmd = [self.local_bench, "trace", f"--target={replica['tcp']}", f"--keys={keys}",
                   f"--requests={requests}", "--zipf=0.9", "--key-prefix=tr:", "--seed=7"]
            if local:
                cmd.append(f"--path={path}")
            if not reports:
                cmd.append("--no-hit-reports")
            log(f"hit ratio: {label}")
            r = json.loads(self.measured([replica["pid"]], cmd, cpus=None)[0].strip().splitlines()[-1])
            if r["errors"]:
                raise SystemExit(f"hit ratio trace {label}: {r['errors']} errors")
            out.append(self.record("local", r, system=f"trace: {label}"))
            self.stop(replica["proc"])
        self.out.append(f"### Hit ratio: one Zipf 0.9 trace ({requests} reads of {keys} keys) on cold "
                        "replicas with 1 MiB caches\n")
        self.out.append("The same trace (same seed) on three replicas of its own each (PostgreSQL store, no "
                        "sync). Hit: answered from the cache (the mapping, or a gRPC Get with SOURCE_CACHE).\n")
        self.out.append("| reads through | hit ratio | answered locally | gRPC from cache | gRPC from store |")
        self.out.append("|---|---|---|---|---|")
        for r in out:
            self.out.append(f"| {r['system'][7:]} | {100 * r['hit_ratio']:.2f}% | {r['local_hits']} | "
                            f"{r['grpc_cache']} | {r['grpc_store']} |")
        self.out.append("")
        return {r["system"][7:]: r["hit_ratio"] for r in out}

    def emit_local_goals(self, rows, ratios):
        def find(system, transport="mmap", inflight=1):
            for r in rows:
                if r["system"] == system and r["transport"] == transport and r["inflight"] == inflight:
                    return r
            return None
        cpp = find("cachecar local read (C++ reader)")
        self.out.append("Goals of issue #14 (same run):\n")
        self.out.append("| metric | goal | measured | met |")
        self.out.append("|---|---|---|---|")
        if cpp:
            self.out.append(f"| local hit p50, C++ | ≤ 1 µs | {cpp['p50_us']:.3f} µs (p99 {cpp['p99_us']:.3f}) | "
                            f"{'yes' if cpp['p50_us'] <= 1 else 'no'} |")
        for lang, goal in (("Go", 1), ("Python", 5)):
            r = next((x for x in rows if x["system"].startswith("cachecar local read") and lang in x["system"]), None)
            if r:
                self.out.append(f"| local hit p50, {lang} | ≤ {goal} µs | {r['p50_us']:.3f} µs | "
                                f"{'yes' if r['p50_us'] <= goal else 'no'} |")
            else:
                self.out.append(f"| local hit p50, {lang} | ≤ {goal} µs | not run here (`--local-reader "
                                f"{lang}=CMD`, the clients' reader) | — |")
        if cpp:
            # Wall-clock hits per second depend on how much of the core the
            # reader got (a loaded machine gives it less); CPU per hit does
            # not: 5 M per core-second is 200 ns of CPU per hit.
            ns = cpp['client_cpu_us'] * 1000
            per_core = 1e9 / ns / 1e6 if ns > 0 else 0
            met = "yes" if cpp['rps'] >= 5e6 else ("yes, per core-second (CPU)" if ns <= 200 else "no")
            self.out.append(f"| local hits per second, one core, C++ | ≥ 5 M (≤ 200 ns CPU per hit) | "
                            f"{cpp['rps'] / 1e6:.2f} M wall-clock; {ns:.0f} ns CPU per hit = "
                            f"{per_core:.1f} M per core-second | {met} |")
        if "gRPC only" in ratios and "local reads" in ratios:
            d = 100 * (ratios["local reads"] - ratios["gRPC only"])
            self.out.append(f"| hit ratio with local reads | within 1 point of gRPC | {100 * ratios['local reads']:.2f}% "
                            f"vs {100 * ratios['gRPC only']:.2f}% ({d:+.2f} points; without hit reports "
                            f"{100 * ratios.get('local reads, no hit reports', 0):.2f}%) | "
                            f"{'yes' if abs(d) <= 1 else 'no'} |")
        grpc_on = find("cachecar Get (gRPC), local_read_path on", "tcp", 1)
        grpc_off = find("cachecar Get (gRPC), local_read_path off", "tcp", 1)
        on50 = find("cachecar Get (gRPC), local_read_path on", "tcp", 50)
        off50 = find("cachecar Get (gRPC), local_read_path off", "tcp", 50)
        if grpc_on and grpc_off:
            text = (f"p50 {grpc_on['p50_us']:.0f} vs {grpc_off['p50_us']:.0f} µs, server CPU "
                    f"{grpc_on['server_cpu_us']:.1f} vs {grpc_off['server_cpu_us']:.1f} µs/req at 1 in flight")
            if on50 and off50:
                text += (f"; {on50['rps']:.0f} vs {off50['rps']:.0f} req/s, {on50['server_cpu_us']:.1f} vs "
                         f"{off50['server_cpu_us']:.1f} µs/req at 50")
            self.out.append(f"| gRPC path | no regression (local_read_path on vs off) | {text} | see ratio |")
        redis = find("Redis GET", "tcp", 1)
        pg = find("PostgreSQL PK SELECT", "tcp", 1)
        if cpp and redis and pg and grpc_off:
            self.out.append("")
            self.out.append(f"Local read p50 vs the others at 1 in flight (TCP): {redis['p50_us'] / cpp['p50_us']:.0f} × "
                            f"faster than Redis GET, {pg['p50_us'] / cpp['p50_us']:.0f} × faster than PostgreSQL, "
                            f"{grpc_off['p50_us'] / cpp['p50_us']:.0f} × faster than cachecar's gRPC Get.")
        self.out.append("")

    def read_queries(self):
        # Statements are normalised (constants become $n): count every call of
        # a statement that reads cachecar_entries, made while only this key was
        # being read. Background statements (relay, probes) do not read it.
        return int(self.psql(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query ILIKE '%UNION ALL SELECT%cachecar_tombstones%' "
            ) or 0)

    def section_engine(self):
        out = os.path.join(self.work, "engine.md")
        cmd = ["bash", f"{ROOT}/bench/engine.sh", "--build-dir", self.build, "--out", out]
        if self.smoke:
            cmd.append("--smoke")
        log("engine: bench/engine.sh")
        self.run(cmd, stdout=subprocess.DEVNULL)
        self.out.append(open(out).read())

    # ----- output
    def emit_latency_table(self, title, rows, cpu_note, pinned=True, digits=0):
        self.out.append(f"### {title}\n")
        where = (f"Pinned: servers on core {SERVER_CPUS}, load generator on core {CLIENT_CPUS}" if pinned
                 else "Not pinned: cachecar, PostgreSQL, Kafka and the load generator share both cores")
        self.out.append(f"{where}; {cpu_note}.\n")
        self.out.append("| system | transport | in flight | p50 µs | p99 µs | req/s | server CPU µs/req | "
                        "client CPU µs/req | server switches/req | polling threads' CPU µs/req |")
        self.out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            d = digits if r["p50_us"] < 10 else 0
            sw = f"{r['switches_per_call']:.2f}" if "switches_per_call" in r else "—"
            poll = f"{r['polling_cpu_us']:.1f}" if r.get("polling_cpu_us") else "—"
            self.out.append(f"| {r['system']} | {r['transport'].upper()} | {r['inflight']} | "
                            f"{r['p50_us']:.{d}f} | {r['p99_us']:.{d}f} | {r['rps']:.0f} | "
                            f"{r['server_cpu_us']:.{max(1, d)}f} | {r['client_cpu_us']:.{max(1, d)}f} | "
                            f"{sw} | {poll} |")
        self.out.append("")

    def emit_hit_ratios(self, rows):
        def find(system, transport, inflight):
            for r in rows:
                if r["system"] == system and r["transport"] == transport and r["inflight"] == inflight:
                    return r
            return None
        self.out.append("Ratios (cachecar ÷ peer; goals from issue #6 in brackets):\n")
        self.out.append("| transport | in flight | p50 vs Redis [≤ 1.0] | req/s vs Redis [≥ 1.0] | "
                        "p50 vs PostgreSQL [≤ 0.5] | req/s vs PostgreSQL [≥ 3] |")
        self.out.append("|---|---|---|---|---|---|")
        for transport in ("tcp", "uds"):
            for inflight in (1, 50):
                c = find("cachecar Get", transport, inflight)
                rd = find("Redis GET", transport, inflight)
                pg = find("PostgreSQL PK SELECT", transport, inflight)
                if not (c and rd and pg):
                    continue
                self.out.append(
                    f"| {transport.upper()} | {inflight} | {ratio(c['p50_us'], rd['p50_us'])} | "
                    f"{ratio(c['rps'], rd['rps'])} | {ratio(c['p50_us'], pg['p50_us'])} | "
                    f"{ratio(c['rps'], pg['rps'])} |")
        self.out.append("")

    def emit_goals(self, rows):
        """Issue #13's read goals, from this run's rows (before = --before-cachecar)."""
        def find(system, transport, inflight):
            for r in rows:
                if r["system"] == system and r["transport"] == transport and r["inflight"] == inflight:
                    return r
            return None
        before = any(r["system"].startswith("cachecar Get, before") for r in rows)
        self.out.append("Issue #13's read goals, this run (ratios; \"before\": the --before-cachecar build "
                        "and its model's floor, same run):\n")
        self.out.append("| metric | transport | in flight | goal | before | after | met |")
        self.out.append("|---|---|---|---|---|---|---|")

        def line(metric, transport, inflight, goal, fn, ok):
            after = fn("cachecar Get", "gRPC floor (async)", transport, inflight)
            prev = fn("cachecar Get, before (callback API)", "gRPC floor (callback)", transport, inflight) \
                if before else None
            if after is None:
                return
            met = "—" if ok is None else ("yes" if ok(after) else "no")
            self.out.append(f"| {metric} | {transport.upper()} | {inflight} | {goal} | "
                            f"{'—' if prev is None else f'{prev:.2f}'} | {after:.2f} | {met} |")

        def cpu_vs_floor(mine, fl, t, i):
            a, b = find(mine, t, i), find(fl, t, i)
            return a["server_cpu_us"] / b["server_cpu_us"] if a and b and b["server_cpu_us"] else None

        def vs(peer, key):
            def fn(mine, _fl, t, i):
                a, b = find(mine, t, i), find(peer, t, i)
                return a[key] / b[key] if a and b and b[key] else None
            return fn

        def batch_vs_unary(batch):
            def fn(mine, _fl, t, i):
                unary, many = find(mine, t, i), find(f"cachecar BatchGet of {batch}", t, i)
                if not (unary and many) or mine != "cachecar Get":
                    return None
                if not many["server_cpu_us"]:
                    return None
                return unary["server_cpu_us"] / (many["server_cpu_us"] / batch)
            return fn

        for t in ("tcp", "uds"):
            for i in (1, 50):
                line("server CPU per Get hit ÷ gRPC floor (same model)", t, i, "≤ 1.15", cpu_vs_floor,
                     lambda x: x <= 1.15)
        def polling_vs_floor(mine, fl, t, i):
            a, b = find(mine, t, i), find(fl, t, i)
            if not (a and b and b.get("polling_cpu_us")) or "polling_cpu_us" not in a:
                return None
            return a["polling_cpu_us"] / b["polling_cpu_us"]

        for t in ("tcp", "uds"):
            for i in (1, 50):
                line("polling-thread CPU per Get hit ÷ gRPC floor's (the request path alone)", t, i,
                     "≤ 1.15", polling_vs_floor, lambda x: x <= 1.15)
        for t in ("tcp", "uds"):
            for i in (1, 50):
                line("server CPU per Get hit ÷ Redis GET", t, i, "report", vs("Redis GET", "server_cpu_us"), None)
        for t in ("tcp", "uds"):
            line("throughput ÷ PostgreSQL PK SELECT", t, 50, "≥ 3", vs("PostgreSQL PK SELECT", "rps"),
                 lambda x: x >= 3)
            line("p50 ÷ PostgreSQL PK SELECT", t, 50, "≤ 0.5", vs("PostgreSQL PK SELECT", "p50_us"),
                 lambda x: x <= 0.5)
        for t in ("tcp", "uds"):
            line("p50 ÷ PostgreSQL PK SELECT", t, 1, "≤ 1.0", vs("PostgreSQL PK SELECT", "p50_us"),
                 lambda x: x <= 1.0)
            line("server CPU ÷ PostgreSQL PK SELECT", t, 1, "≤ 1.0", vs("PostgreSQL PK SELECT", "server_cpu_us"),
                 lambda x: x <= 1.0)
        for t in ("tcp", "uds"):
            for i in (1, 50):
                for batch in (10, 100):
                    line(f"unary Get ÷ BatchGet of {batch}, server CPU per Get", t, i, "≥ 2 → offer it",
                         batch_vs_unary(batch), lambda x: x >= 2)
        self.out.append("")

    def header(self):
        def first_line(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
            except (OSError, IndexError):
                return "?"
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
        mem = int(open("/proc/meminfo").readline().split()[1]) // (1024 * 1024)
        commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
        return "\n".join([
            f"Run of `{' '.join(sys.argv[1:]) or '(full)'}` at commit {commit}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            f"Machine: {os.cpu_count()} × {cpu[0] if cpu else '?'}, {mem} GiB, Linux {platform.release()}.",
            f"Peers: {first_line(['redis-server', '--version'])}; "
            f"{first_line(['/usr/lib/postgresql/15/bin/postgres', '--version'])}; "
            f"Kafka 3.9.1 (KRaft, one node); {first_line(['pgbench', '--version'])}.",
            ""])

    def main(self):
        sections = self.args.sections.split(",")
        try:
            if any(s in sections for s in ("hit", "write", "propagation", "stampede", "local")):
                log("starting PostgreSQL and Kafka")
                self.start_postgres()
                self.start_kafka()
            if "hit" in sections or "local" in sections:
                self.start_redis()
            if "hit" in sections:
                self.section_hit()
            if "models" in sections:
                self.section_models()
            if "local" in sections:
                self.section_local()
            if "write" in sections:
                self.section_write()
            if "propagation" in sections:
                self.section_propagation()
            if "stampede" in sections:
                self.section_stampede()
            if "engine" in sections:
                self.section_engine()
        finally:
            self.cleanup()
        os.makedirs(os.path.dirname(os.path.abspath(self.args.out)), exist_ok=True)
        with open(self.args.out, "w") as f:
            f.write(self.header() + "\n" + "\n".join(self.out) + "\n")
        with open(os.path.splitext(self.args.out)[0] + ".jsonl", "w") as f:
            for row in self.raw:
                f.write(json.dumps({k: v for k, v in row.items() if k != "proc"}) + "\n")
        log(f"wrote {self.args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny runs: proves the harness works (CI)")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench/out/results.md"))
    parser.add_argument("--sections", default="hit,models,write,propagation,stampede,local,engine")
    parser.add_argument("--before-cachecar", metavar="BINARY",
                        help="also measure this cachecar binary (an earlier build) in the hit section")
    parser.add_argument("--local-reader", action="append", metavar="NAME=COMMAND",
                        help="local section: another language's reader, a command that takes "
                             "cachecar_local_bench's `hits` flags and prints its JSON (repeatable)")
    parser.add_argument("--ghz", action="store_true", help="also drive the hit path with ghz")
    parser.add_argument("--redis-rate", type=float, default=0,
                        help="requests per second redis-benchmark's count assumes (a busy machine: lower)")
    parser.add_argument("--seconds", type=float, default=5,
                        help="measured seconds per hit-path row (default 5)")
    parser.add_argument("--keep-work", action="store_true", help="keep logs and data of the run")
    parser.add_argument("--sql-propagation-1000", action="store_true",
                        help="propagation: direct SQL writes at 1000/s too (default: 100/s only)")
    parser.add_argument("--baseline-build-dir", metavar="DIR",
                        help="write section: also measure this build (bench/build_baseline.sh REV) "
                             "on a database its own migrate made, alternated with the current one")
    parser.add_argument("--propagation-variant", action="append", metavar="LABEL:PROP=V,...",
                        help="propagation with these librdkafka properties instead of the "
                             "default pair (repeatable)")
    Bench(parser.parse_args()).main()


if __name__ == "__main__":
    main()
