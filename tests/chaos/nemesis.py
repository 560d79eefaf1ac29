"""The chaos run's nemesis: one fault at a time, chosen from the enabled kinds
by a seeded random generator (each kind once per round, rounds shuffled), each
bounded and undone before the next. Only processes the run started are
signalled; all traffic stays on loopback.

Kinds:
  replica-pause          SIGSTOP a replica 2-5 s, then SIGCONT
  replica-kill           SIGKILL a replica; the supervisor restarts it
  broker-pause           SIGSTOP the broker 3-6 s, then SIGCONT
  broker-kill            SIGKILL the broker, 2-5 s down, then start it again
  pg-kill-backends       pg_terminate_backend() of every other backend
  pg-restart             stop PostgreSQL (fast), 2-4 s down, start it again
  replica-start-pg-down  stop PostgreSQL, SIGKILL a replica, so that the
                         supervisor starts it while PostgreSQL is down, 4-6 s
                         down, start PostgreSQL again
  add-partitions         two more partitions on the sync topic (at most 16)
  garbage                messages that are not cachecar events on the topic

Thread-safety: runs in its own thread; heal() from the main thread after it
has stopped.
"""

import os
import random
import signal
import threading

from cluster import log, now

ALL_KINDS = (
    "replica-pause",
    "replica-kill",
    "broker-pause",
    "broker-kill",
    "pg-kill-backends",
    "pg-restart",
    "replica-start-pg-down",
    "add-partitions",
    "garbage",
)


def parse_kinds(text):
    if text in ("all", ""):
        return list(ALL_KINDS)
    if text == "none":
        return []
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad:
        raise SystemExit("unknown fault kind(s) %s; known: %s" % (", ".join(bad), ", ".join(ALL_KINDS)))
    return kinds


class Nemesis(threading.Thread):
    def __init__(self, kinds, seed, until, pg, kafka, topic, partitions, replicas, recorder,
                 gap=(1.5, 4.0)):
        super().__init__(name="nemesis", daemon=True)
        self.kinds = list(kinds)
        self.rng = random.Random(seed)
        self.until = until
        self.pg, self.kafka, self.topic = pg, kafka, topic
        self.partitions = partitions
        self.replicas = replicas
        self.rec = recorder
        self.gap = gap
        self.stop_event = threading.Event()
        self.failed = None
        self.done = 0

    def run(self):
        try:
            bag = []
            while not self.stop_event.is_set() and self.kinds:
                self.stop_event.wait(self.rng.uniform(*self.gap))
                if self.stop_event.is_set() or now() >= self.until:
                    break
                if not bag:
                    bag = list(self.kinds)
                    self.rng.shuffle(bag)
                kind = bag.pop()
                fault = {"op": "fault", "kind": kind, "start": now()}
                getattr(self, kind.replace("-", "_"))(fault)
                fault["end"] = now()
                self.rec.add(**fault)
                self.done += 1
                log("fault %s %s %.1f-%.1f s %s" % (kind, fault.get("target", ""), fault["start"], fault["end"], fault.get("detail", "")))
        except Exception:
            import traceback

            self.failed = traceback.format_exc()
            log("nemesis failed:\n" + self.failed)

    def sleep(self, lo, hi):
        d = self.rng.uniform(lo, hi)
        self.stop_event.wait(d)  # bounded even when stopping: the fault is undone right after
        return d

    def pick_replica(self):
        return self.rng.choice(self.replicas)

    # --- replicas
    def replica_pause(self, fault):
        r = self.pick_replica()
        fault["target"] = r.name
        with r.lock:
            if not r.signal(signal.SIGSTOP):
                fault["detail"] = "not running"
                return
            r.paused = True
        fault["detail"] = "%.1f s" % self.sleep(2, 5)
        with r.lock:
            r.signal(signal.SIGCONT)
            r.paused = False

    def replica_kill(self, fault):
        r = self.pick_replica()
        fault["target"] = r.name
        with r.lock:
            r.expect_exit = True
            if not r.signal(signal.SIGKILL):
                r.expect_exit = False
                fault["detail"] = "not running"

    # --- the broker
    def broker_pause(self, fault):
        fault["target"] = "broker"
        if self.kafka.signal(signal.SIGSTOP) is None:
            fault["detail"] = "not running"
            return
        self.kafka.paused = True
        fault["detail"] = "%.1f s" % self.sleep(3, 6)
        self.kafka.signal(signal.SIGCONT)
        self.kafka.paused = False

    def broker_kill(self, fault):
        fault["target"] = "broker"
        self.kafka.sh("broker-stop", "--kill", timeout=60)
        d = self.sleep(2, 5)
        self.kafka.sh("broker-start", timeout=180)
        fault["detail"] = "down %.1f s, back at %.1f s" % (d, now())

    # --- PostgreSQL
    def pg_kill_backends(self, fault):
        fault["target"] = "postgres"
        with self.pg.connect() as conn:
            n = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchone()[0]
        fault["detail"] = "%d backends" % n

    def pg_restart(self, fault):
        fault["target"] = "postgres"
        self.pg.stop_server()
        d = self.sleep(2, 4)
        self.pg.start_server()
        fault["detail"] = "down %.1f s" % d

    def replica_start_pg_down(self, fault):
        r = self.pick_replica()
        fault["target"] = "postgres+" + r.name
        self.pg.stop_server()
        with r.lock:
            r.expect_exit = True
            r.signal(signal.SIGKILL)
        d = self.sleep(4, 6)
        self.pg.start_server()
        fault["detail"] = "postgres down %.1f s; %s restarted meanwhile" % (d, r.name)

    # --- the topic
    def add_partitions(self, fault):
        fault["target"] = "topic"
        if self.partitions >= 16:
            fault["detail"] = "already 16"
            return
        self.partitions += 2
        self.kafka.sh("add-partitions", self.topic, str(self.partitions), timeout=180)
        fault["detail"] = "now %d" % self.partitions

    def garbage(self, fault):
        fault["target"] = "topic"
        msgs = [os.urandom(self.rng.randint(1, 64)), b"not a cachecar event", b"\x0a\xff\xff\xff\xff\x0f"]
        for i, m in enumerate(msgs):
            self.kafka.sh("produce", self.topic, "garbage-%d" % i, str(self.rng.randrange(self.partitions)),
                          stdin=m, timeout=60)
        fault["detail"] = "%d messages" % len(msgs)

    # --- after the run
    def heal(self):
        """Everything back: replicas resumed, the broker and PostgreSQL up."""
        for r in self.replicas:
            with r.lock:
                if r.paused:
                    r.signal(signal.SIGCONT)
                    r.paused = False
        if self.kafka.paused:
            self.kafka.signal(signal.SIGCONT)
            self.kafka.paused = False
        if self.kafka.pid() is None:
            self.kafka.sh("broker-start", timeout=180)
        if not self.pg.up:
            self.pg.start_server()
