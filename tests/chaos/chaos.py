#!/usr/bin/env python3
"""cachecar's chaos run and history checker (issue #12; the rules in
tests/chaos/README.md and checker.py).

Starts PostgreSQL 15, one Kafka broker and N real cachecar replicas, runs
writers (gRPC through every replica, and SQL straight into the table) and
readers on every replica while a seeded nemesis injects faults, heals
everything, lets the replicas settle, compares every replica's cache with
PostgreSQL, and checks the whole recorded history (integrity, C1, C2, C4, C5).

Exit status: 0 all checks passed (and, with --availability fail, no
availability finding); 1 a consistency violation; 3 availability findings
only; 2 the run itself failed (a harness error). With --expect-violations
CHECKS the run passes (0) only if each of those checks found a violation (a
planted bug must be caught), else 1.

Run through tests/chaos/run.sh, which makes the virtualenv and the stubs.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time

import checker
import cluster
import nemesis as nemesis_mod
from cluster import Kafka, Postgres, Recorder, Replica, Supervisor, log, now


def duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError("a duration like 90s, 10m, 1h: %r" % text)
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="tests/chaos/run.sh", description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--cachecar", required=True, help="the cachecar binary")
    ap.add_argument("--work", help="work dir (logs, history.jsonl, report.txt); default: a new /tmp dir")
    ap.add_argument("--duration", type=duration, default=60.0, help="workload time with faults (default 60s)")
    ap.add_argument("--seed", type=int, default=None, help="the nemesis's and the clients' seed (default: random, printed)")
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--keys", type=int, default=24, help="keys written and read (default 24)")
    ap.add_argument("--faults", default="all",
                    help="comma-separated fault kinds, 'all' or 'none' (default all): " + ", ".join(nemesis_mod.ALL_KINDS))
    ap.add_argument("--fault-gap", default="1.5,4", help="seconds between faults, min,max (default 1.5,4)")
    ap.add_argument("--max-staleness", type=duration, default=1.0, help="the replicas' max_staleness (default 1s)")
    ap.add_argument("--slack", type=duration, default=0.25, help="C4 slack added to max_staleness (default 250ms)")
    ap.add_argument("--settle", type=duration, default=30.0, help="longest wait for convergence after healing (default 30s)")
    ap.add_argument("--readers", type=int, default=2, help="reader threads per replica (default 2)")
    ap.add_argument("--read-rate", type=float, default=60.0, help="reads/s per reader thread (default 60)")
    ap.add_argument("--write-rate", type=float, default=15.0, help="writes/s per replica (default 15)")
    ap.add_argument("--sql-rate", type=float, default=10.0, help="direct SQL writes/s (default 10)")
    ap.add_argument("--partitions", type=int, default=4, help="sync topic partitions at start (default 4)")
    ap.add_argument("--audit-rate", type=int, default=None,
                    help="the replicas' audit_rate (default: cachecar's). The staleness auditor repairs "
                         "entries the sync path left stale, so a planted sync bug needs it off (0)")
    ap.add_argument("--plant", default="", help="CACHECAR_FAULT_POINT for every replica (e.g. skip_event/3): a planted bug")
    ap.add_argument("--expect-violations", default="",
                    help="comma-separated checks that must report violations (for a planted bug)")
    ap.add_argument("--availability", choices=("fail", "report"), default="fail",
                    help="fail (exit 3) or only report on availability findings (default fail)")
    args = ap.parse_args(argv)
    args.kinds = nemesis_mod.parse_kinds(args.faults)
    args.gap = tuple(float(x) for x in args.fault_gap.split(","))
    args.expect = [c.strip() for c in args.expect_violations.split(",") if c.strip()]
    for c in args.expect:
        if c not in checker.CHECKS:
            ap.error("--expect-violations: unknown check %s (known: %s)" % (c, ", ".join(checker.CHECKS)))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10**6)
    return args


def child_env(plant):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHECAR_")}
    if plant:
        env["CACHECAR_FAULT_POINT"] = plant
    return env


def migrate(binary, pg, work):
    out = cluster.run([binary, "migrate", "--store=postgres", "--postgres-dsn=" + pg.dsn], timeout=120,
                      env=child_env(""))
    with open(os.path.join(work, "logs", "migrate.log"), "w") as f:
        f.write(out)


def wait_listening(replicas, bound):
    """Until every replica answers Health/Check liveness (bounded)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + bound
    for r in replicas:
        with grpc.insecure_channel("unix:" + r.sock) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while True:
                try:
                    stub.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=1)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("replica %s did not answer liveness within %.0f s: %s" % (r.name, bound, r.log_tail(5)))
                    time.sleep(0.1)


def readiness(replicas):
    """Each replica's readiness (only reported: the checks never depend on it)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    out = {}
    for r in replicas:
        with grpc.insecure_channel("unix:" + r.sock) as ch:
            try:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=1)
                out[r.name] = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            except grpc.RpcError as e:
                out[r.name] = e.code().name
    return out


def db_snapshot(pg, keys):
    """PostgreSQL's view of every key: found, version, value (absent: the tombstone's version)."""
    with pg.connect(timeout=5) as conn:
        rows = conn.execute(
            "SELECT key, version, value FROM cachecar_entries WHERE namespace = 'default' AND key = ANY(%s)",
            (keys,),
        ).fetchall()
        tombs = conn.execute(
            "SELECT key, version FROM cachecar_tombstones WHERE namespace = 'default' AND key = ANY(%s)",
            (keys,),
        ).fetchall()
    db = {k: {"found": False, "version": 0} for k in keys}
    for k, v in tombs:
        db[k] = {"found": False, "version": int(v)}
    for k, v, val in rows:
        db[k] = {"found": True, "version": int(v), "value": bytes(val).decode("utf-8", "replace")}
    return db


def converge(args, pg, clients, keys, rec, heal_time):
    """C5: rounds of CACHED Gets of every key on every replica against
    PostgreSQL until they all agree from the cache, or --settle passes."""
    deadline = heal_time + args.settle
    rnd = 0
    while True:
        rnd += 1
        try:
            before = db_snapshot(pg, keys)
        except Exception as e:
            log("C5 round %d: cannot read PostgreSQL (%s); again" % (rnd, e))
            if now() > deadline:
                rec.add(op="harness_error", what="C5: PostgreSQL unreadable after healing: %s" % e)
                return
            time.sleep(1)
            continue
        answers = {}
        for c in clients:
            got = {}
            for k in keys:
                r = c.get(k, phase="final")
                if r["outcome"] == "ok":
                    got[k] = {"found": r["found"], "version": r["version"], "value": r["value"], "source": r["source"]}
                else:
                    got[k] = {"error": r["code"]}
            answers[c.replica.name] = got
        after = db_snapshot(pg, keys)
        agree = before == after and all(
            a.get("source") == "cache" and a.get("found") == after[k]["found"] and a.get("version") == after[k]["version"]
            and (not a["found"] or a.get("value") == after[k].get("value"))
            for got in answers.values() for k, a in got.items()
        )
        last = agree or now() > deadline
        rec.add(op="c5_round", round=rnd, time=now(), since_heal=now() - heal_time, db=after,
                replicas=answers, converged=agree, db_changed=before != after)
        if last:
            log("C5: round %d %s" % (rnd, "converged" if agree else "NOT converged; settle time is over"))
            return
        time.sleep(1.0)


def main(argv):
    args = parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="cachecar-chaos.")
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    # Unix sockets need short paths (108 bytes).
    sockdir = tempfile.mkdtemp(prefix="cachecar-chaos-sock.")
    rec = Recorder()
    bound = args.max_staleness + args.slack
    rec.add(op="config", seed=args.seed, duration=args.duration, replicas=args.replicas, keys=args.keys,
            faults=args.kinds, max_staleness=args.max_staleness, slack=args.slack, plant=args.plant)
    log("chaos run: seed %d, %.0f s, %d replicas, faults: %s%s; work dir %s" % (
        args.seed, args.duration, args.replicas, ",".join(args.kinds) or "none",
        ("; PLANTED " + args.plant) if args.plant else "", work))

    pg, kafka = Postgres(work), Kafka(work)
    replicas, clients, loops = [], [], []
    supervisor = None
    status = 2
    interrupted = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    topic = "chaos-%d" % os.getpid()
    try:
        pg.start()
        kafka.start()
        migrate(args.cachecar, pg, work)
        kafka.sh("create-topic", topic, str(args.partitions), timeout=180)
        base = [
            args.cachecar, "serve", "--metrics-listen=", "--store=postgres",
            "--postgres-dsn=" + pg.dsn, "--postgres-pool-size=4", "--postgres-connect-timeout=2s",
            "--postgres-query-timeout=2s", "--workers=4", "--kafka-brokers=" + kafka.bootstrap,
            "--sync-topic=" + topic, "--max-staleness=%dms" % round(args.max_staleness * 1000),
            "--stale-reads=bypass", "--outbox-relay-delay=500ms", "--shutdown-grace=1s", "--log-level=info",
        ]
        if args.audit_rate is not None:
            base.append("--audit-rate=%d" % args.audit_rate)
        for i in range(args.replicas):
            r = Replica("r%d" % i, sockdir, os.path.join(work, "logs"), base, child_env(args.plant))
            replicas.append(r)
            r.spawn()
            rec.add(op="replica_start", replica=r.name, inc=r.incarnation, time=now())
        wait_listening(replicas, 60)
        # Readiness is waited for a while (it reflects this process only) so the run
        # starts warm, but never required.
        t = time.monotonic()
        while time.monotonic() - t < 30 and set(readiness(replicas).values()) != {"SERVING"}:
            time.sleep(0.2)
        log("replicas listening; readiness %s" % readiness(replicas))
        supervisor = Supervisor(replicas, rec)
        supervisor.start()

        import workload

        keys = ["chaos:k%02d" % i for i in range(args.keys)]
        stop = __import__("threading").Event()
        rng = random.Random(args.seed)
        for r in replicas:
            c = workload.Client(r, rec)
            clients.append(c)
            for j in range(args.readers):
                loops.append(workload.Reader(c, keys, args.read_rate, rng.random(), stop))
            loops.append(workload.Writer(c, keys, args.write_rate, rng.random(), stop))
        sql = workload.SqlWriter(pg, keys, args.sql_rate, rng.random(), stop, rec)
        loops.append(sql)
        for l in loops:
            l.start()
        start = now()
        until = start + args.duration
        nem = nemesis_mod.Nemesis(args.kinds, args.seed, until, pg, kafka, topic, args.partitions, replicas, rec, gap=args.gap)
        nem.start()
        next_note = start + 10
        while now() < until:
            time.sleep(0.2)
            if now() >= next_note:
                n = len(rec.records)
                log("%d records, %d faults so far" % (n, nem.done))
                next_note += 10
            if any(l.failed for l in loops) or nem.failed:
                break
        nem.stop_event.set()
        nem.join(300)
        nem.heal()
        heal_time = now()
        log("healed at %.1f s; readiness %s" % (heal_time, readiness(replicas)))
        # Writers keep going for a moment on the healed cluster, then stop.
        time.sleep(2)
        stop.set()
        for l in loops:
            l.join(30)
        sql.close()
        failed = [l.name + ":\n" + l.failed for l in loops if l.failed]
        if nem.failed:
            failed.append("nemesis:\n" + nem.failed)
        for f in failed:
            rec.add(op="harness_error", what=f)
        # Let writes whose outcome is unknown finish on the servers (their
        # deadline and the store's query timeout), then compare.
        time.sleep(max(3.0, 2 * args.max_staleness))
        t = time.monotonic()
        while not supervisor.all_running() and time.monotonic() - t < 30:
            time.sleep(0.2)
        converge(args, pg, clients, keys, rec, heal_time)
        status = 0 if not failed else 2
    except KeyboardInterrupt:
        log("interrupted")
        rec.add(op="harness_error", what="interrupted")
        status = 2
    except Exception as e:
        import traceback

        log("run failed: %s" % traceback.format_exc())
        rec.add(op="harness_error", what=str(e))
        status = 2
    finally:
        # The supervisor first, so that it restarts nobody; the replicas it
        # started die with its thread (setpriv --pdeathsig), the others get
        # SIGTERM.
        if supervisor is not None:
            supervisor.stopping.set()
            supervisor.join(10)
        for r in replicas:
            r.stop()
        kafka.teardown()
        pg.teardown()
        shutil.rmtree(sockdir, ignore_errors=True)

    hist_path = os.path.join(work, "history.jsonl")
    with open(hist_path, "w") as f:
        for r in rec.records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    res = checker.check(rec.records, args.max_staleness, args.slack)
    with open(os.path.join(work, "report.txt"), "w") as f:
        checker.report(rec.records, res, args.max_staleness, args.slack, out=f)
    checker.report(rec.records, res, args.max_staleness, args.slack)
    print("history: %s; replica logs: %s" % (hist_path, os.path.join(work, "logs")))
    print("seed %d (rerun: tests/chaos/run.sh --duration %ds --seed %d --faults %s --max-staleness %dms%s)" % (
        args.seed, args.duration, args.seed, ",".join(args.kinds) or "none", round(args.max_staleness * 1000),
        ((" --audit-rate %d" % args.audit_rate) if args.audit_rate is not None else "") +
        ((" --plant " + args.plant) if args.plant else "")))
    if status == 2:
        print("RESULT: the run itself failed (harness error above)")
        return 2
    if args.expect:
        missed = [c for c in args.expect if res.count(c) == 0]
        if missed:
            print("RESULT: FAIL: the planted bug (%s) went unnoticed by %s" % (args.plant, ", ".join(missed)))
            return 1
        print("RESULT: PASS: the planted bug (%s) was caught: %s" % (
            args.plant, ", ".join("%s %d" % (c, res.count(c)) for c in args.expect)))
        return 0
    if res.total():
        print("RESULT: FAIL: %d consistency violation(s)" % res.total())
        return 1
    if res.findings and args.availability == "fail":
        print("RESULT: FAIL: %d availability finding(s), no consistency violation" % len(res.findings))
        return 3
    print("RESULT: PASS: 0 violations (%s)" % ", ".join("%s checked %d" % (c, res.checked[c]) for c in checker.CHECKS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
