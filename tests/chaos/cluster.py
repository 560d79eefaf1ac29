"""The chaos run's real parts: PostgreSQL 15 (tests/pg/pg.sh), one Kafka broker
(tests/kafka/kafka.sh) and N `cachecar serve` replicas, all started by the run
itself on loopback and unix sockets, and a supervisor that restarts replicas
that die, as kubelet restarts a sidecar.

Every process this module signals is one it started (the replicas' Popen
objects, the broker's pid from its own KAFKA_ROOT/kafka.pid); PostgreSQL is
stopped and started only through pg.sh on its own data directory.

Thread-safety: Recorder.add and Replica.incarnation may be used from any
thread; the nemesis (one thread) and the supervisor (one thread) share
Replica objects through Replica.lock.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PG_SH = os.path.join(ROOT, "tests", "pg", "pg.sh")
KAFKA_SH = os.path.join(ROOT, "tests", "kafka", "kafka.sh")

T0 = time.monotonic()


def now():
    """Seconds since the run began, on the one monotonic clock of the history."""
    return time.monotonic() - T0


class Recorder:
    """The history: a list of dicts (list.append is atomic under the GIL)."""

    def __init__(self):
        self.records = []

    def add(self, **rec):
        self.records.append(rec)
        return rec


def log(msg):
    print("[%7.2f] %s" % (now(), msg), flush=True)


def run(cmd, timeout, check=True, stdin=None, env=None):
    """Runs a command (bounded); its combined output. Raises on failure if check."""
    p = subprocess.run(
        cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL, env=env,
    )
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (" ".join(map(shlex.quote, cmd)), p.returncode, out))
    return out


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^([A-Z_]+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2).strip("'")
    return env


class Postgres:
    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        self.env = {}
        self.up = False

    def start(self):
        out = run(["bash", PG_SH, "start", self.dir], timeout=180)
        self.env = read_env(os.path.join(self.dir, "env"))
        self.dsn = self.env["PG_DSN"]
        self.up = True
        log(out.strip().splitlines()[-1])

    def stop_server(self):
        self.up = False
        run(["bash", PG_SH, "pg-stop", self.dir], timeout=90)

    def start_server(self):
        run(["bash", PG_SH, "pg-start", self.dir], timeout=120)
        self.up = True

    def teardown(self):
        if os.path.exists(os.path.join(self.dir, "env")):
            run(["bash", PG_SH, "stop", self.dir], timeout=120, check=False)

    def connect(self, timeout=3):
        import psycopg

        return psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=timeout,
            options="-c statement_timeout=%d" % (timeout * 1000),
        )


class Kafka:
    def __init__(self, work):
        self.dir = os.path.join(work, "kafka")
        self.env = {}
        self.paused = False

    def start(self):
        out = run(["bash", KAFKA_SH, "start", self.dir], timeout=1200)
        self.env = read_env(os.path.join(self.dir, "env"))
        self.bootstrap = self.env["KAFKA_BOOTSTRAP"]
        log(out.strip().splitlines()[-1])

    def sh(self, *args, timeout=180, stdin=None, check=True):
        return run(["bash", KAFKA_SH, args[0], self.dir] + list(args[1:]), timeout=timeout, stdin=stdin, check=check)

    def pid(self):
        """The broker JVM's pid if it runs (kafka.sh's own pid file), else None."""
        try:
            with open(os.path.join(self.env["KAFKA_ROOT"], "kafka.pid")) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.env["KAFKA_ROOT"].encode() not in f.read():
                    return None
            with open("/proc/%d/status" % pid) as f:
                state = re.search(r"^State:\s+(\S)", f.read(), re.M).group(1)
            return None if state in ("Z", "X") else pid
        except (OSError, ValueError, AttributeError, KeyError):
            return None

    def signal(self, sig):
        pid = self.pid()
        if pid is not None:
            os.kill(pid, sig)
        return pid

    def teardown(self):
        if self.paused:
            self.signal(signal.SIGCONT)
        if os.path.exists(os.path.join(self.dir, "env")):
            run(["bash", KAFKA_SH, "stop", self.dir], timeout=120, check=False)


class Replica:
    """One cachecar replica: a name, a unix socket, a log, its incarnations."""

    def __init__(self, name, sockdir, logdir, argv, env):
        self.name = name
        self.sock = os.path.join(sockdir, "%s.sock" % name)
        # The published cache the readers map (docs/LOCAL_READS.md).
        self.local_path = os.path.join(sockdir, "%s.cache" % name)
        self.log_path = os.path.join(logdir, "%s.log" % name)
        self.argv = argv + ["--listen=unix://" + self.sock, "--replica-id=" + name,
                            "--local-read-path=" + self.local_path]
        self.env = env
        self.proc = None
        self.incarnation = 0
        self.expect_exit = False  # the nemesis killed it: not a finding
        self.paused = False
        self.lock = threading.Lock()
        self.starts = 0

    def spawn(self):
        with open(self.log_path, "ab") as logf:
            self.incarnation += 1
            logf.write(("==== chaos: incarnation %d at %.3f s\n" % (self.incarnation, now())).encode())
            logf.flush()
            # The replica dies with the thread that spawned it (setpriv
            # --pdeathsig): a chaos run killed by a timeout leaves none behind.
            self.proc = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL"] + self.argv, stdin=subprocess.DEVNULL,
                stdout=logf, stderr=subprocess.STDOUT, env=self.env,
            )
        self.expect_exit = False
        self.starts += 1

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            return True
        return False

    def log_tail(self, n=3):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 4096))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        # This incarnation's lines only; the most telling: errors first.
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith("==== chaos"):
                lines = lines[i + 1:]
                break
        bad = [l for l in lines if "[critical]" in l or "[error]" in l]
        return " | ".join(l.strip()[:300] for l in (bad or lines)[-n:])

    def stop(self, grace=8.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            self.signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Supervisor(threading.Thread):
    """Restarts replicas that exited, as kubelet restarts a sidecar: one the
    nemesis killed after kill_restart_delay; one that exited by itself (an
    availability finding) with a doubling back-off from 1 s to 8 s (kubelet's
    is 10 s to 5 min; shortened so a run keeps its replicas)."""

    def __init__(self, replicas, recorder):
        super().__init__(name="supervisor", daemon=True)
        self.replicas = replicas
        self.rec = recorder
        self.kill_restart_delay = 0.5
        self.stopping = threading.Event()
        self.backoff = {r.name: 1.0 for r in replicas}
        self.due = {}

    def run(self):
        while not self.stopping.is_set():
            for r in self.replicas:
                with r.lock:
                    self.tend(r)
            self.stopping.wait(0.05)

    def tend(self, r):
        if r.proc is None:
            return
        status = r.proc.poll()
        if status is None:
            return
        if r.name not in self.due:
            expected = r.expect_exit
            why = "" if expected else r.log_tail(1)
            self.rec.add(op="replica_exit", replica=r.name, inc=r.incarnation, time=now(),
                         status=("signal %d" % -status) if status < 0 else ("exit %d" % status),
                         expected=expected, why=why)
            if expected:
                delay = self.kill_restart_delay
            else:
                delay = self.backoff[r.name]
                self.backoff[r.name] = min(8.0, delay * 2)
                log("replica %s exited by itself (%s); restart in %.1f s: %s" % (r.name, status, delay, why))
            self.due[r.name] = now() + delay
            r.paused = False
        if now() >= self.due[r.name]:
            del self.due[r.name]
            r.spawn()
            self.rec.add(op="replica_start", replica=r.name, inc=r.incarnation, time=now())

    def all_running(self):
        return all(r.proc is not None and r.proc.poll() is None and r.name not in self.due for r in self.replicas)
