#!/usr/bin/env python3
"""The chaos run's history checker: docs/DESIGN.md's contract over a recorded history.

A history is a list of records (dicts, one JSON object per line in
history.jsonl), each an operation with its start and end time on one
monotonic clock (seconds since the run began) and its outcome:

  writes   op put | delete (through a replica), sql_put | sql_delete (straight
           into the table); outcome "ok" (acknowledged, with "version"),
           "fail" (definitely not committed: ABORTED, INVALID_ARGUMENT, a
           serialization failure) or "unknown" (timeout, lost connection,
           UNAVAILABLE: possibly committed). Values are self-describing
           tokens "KEY|WRITER|SEQ".
  reads    op get | batch_get (phase "run" or "final"), outcome "ok" with
           found/version/value/source (batch_get: "entries"), else an error.
           "replica", and "inc_start"/"inc_end": the replica's incarnation
           when the call began and when it ended.
  c5_round the final convergence rounds: PostgreSQL's rows and every
           replica's CACHED answers for every key.
  fault, replica_start, replica_exit, config: context for the report.

The rules (tests/chaos/README.md explains why each is sound):

  integrity  every found read carries a token written for that key, by a write
             that did not definitely fail, and with that write's version if it
             was acknowledged; every (key, version) seen anywhere (reads,
             acknowledged writes) denotes one content (one token, or absent);
             a version belongs to one key only.
  C1         per replica incarnation and key, for reads r1, r2 with
             r1.end < r2.start: r2.version >= r1.version.
  C2         after a write acknowledged by replica R with version v (end t),
             every read on R of that key starting after t returns >= v.
  C4         a read that began more than max_staleness + slack after an
             acknowledged write (its end: the commit's acknowledgement) with a
             higher version returned an older version.
  C5         in the last convergence round every replica's answer for every
             key equals PostgreSQL's row (a round that answered from the store
             cannot show the cache: reported as unverified).

Thread-safety: none needed (single-threaded, pure functions of the history).
Usage: checker.py HISTORY.jsonl [--max-staleness S] [--slack S]
"""

import argparse
import bisect
import collections
import json
import sys

CHECKS = ("integrity", "C1", "C2", "C4", "C5")
WRITE_OPS = ("put", "delete", "sql_put", "sql_delete")
READ_OPS = ("get", "batch_get")

Read = collections.namedtuple(
    "Read", "key found version value source replica inc start end phase consistency op"
)
Write = collections.namedtuple("Write", "key kind version token start end replica outcome found")


def parse_token(value):
    """KEY|WRITER|SEQ -> (key, writer, seq), or None."""
    if value is None:
        return None
    parts = value.rsplit("|", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def reads_of(history):
    """Every successful read, one per key (a BatchGet gives one per entry)."""
    out = []
    for rec in history:
        if rec.get("op") not in READ_OPS or rec.get("outcome") != "ok":
            continue
        inc = rec.get("inc_start") if rec.get("inc_start") == rec.get("inc_end") else None
        entries = rec["entries"] if rec["op"] == "batch_get" else [rec]
        for e in entries:
            out.append(
                Read(
                    e["key"],
                    bool(e.get("found")),
                    int(e.get("version", 0)),
                    e.get("value"),
                    e.get("source"),
                    rec.get("replica"),
                    inc,
                    rec["start"],
                    rec["end"],
                    rec.get("phase", "run"),
                    rec.get("consistency", "cached"),
                    rec["op"],
                )
            )
    return out


def writes_of(history):
    out = []
    for rec in history:
        if rec.get("op") not in WRITE_OPS:
            continue
        found = rec.get("found", True) if rec["op"] in ("delete", "sql_delete") else True
        out.append(
            Write(
                rec["key"],
                rec["op"],
                int(rec["version"]) if rec.get("version") is not None else None,
                rec.get("value"),
                rec["start"],
                rec["end"],
                rec.get("replica"),
                rec.get("outcome"),
                found,
            )
        )
    return out


def committed(writes):
    """Acknowledged writes that made a new version (Delete of an absent key makes none)."""
    return [w for w in writes if w.outcome == "ok" and w.found and w.version is not None]


class Result:
    """Per check: how many cases it examined, its violations (dicts), and the worst first."""

    def __init__(self):
        self.checked = collections.Counter()
        self.violations = collections.defaultdict(list)
        self.findings = []  # availability, reported apart from consistency
        self.notes = []

    def violated(self, check, sort_key, **detail):
        detail["_sort"] = sort_key
        self.violations[check].append(detail)

    def count(self, check):
        return len(self.violations.get(check, []))

    def total(self):
        return sum(len(v) for v in self.violations.values())


class EarliestNewer:
    """Writes of one group sorted by end time: the earliest-ended write that ended
    before t and has a version above v."""

    def __init__(self, writes):
        self.writes = sorted(writes, key=lambda w: w.end)
        self.ends = [w.end for w in self.writes]
        self.prefix_max = []
        best = -1
        for w in self.writes:
            best = max(best, w.version)
            self.prefix_max.append(best)

    def query(self, t, v):
        n = bisect.bisect_left(self.ends, t)  # writes with end < t
        if n == 0 or self.prefix_max[n - 1] <= v:
            return None
        j = bisect.bisect_right(self.prefix_max, v, 0, n)  # first write whose prefix max > v
        return self.writes[j]

    def newer_count(self, t, v):
        n = bisect.bisect_left(self.ends, t)
        return sum(1 for w in self.writes[:n] if w.version > v)


def check_integrity(reads, writes, res):
    by_token = {}
    for w in writes:
        if w.token is not None and w.kind in ("put", "sql_put"):
            by_token[w.token] = w
    # (key, version) -> {content: first place it was seen}
    contents = collections.defaultdict(dict)
    version_keys = collections.defaultdict(set)
    for w in committed(writes):
        content = w.token if w.kind in ("put", "sql_put") else "<absent>"
        contents[(w.key, w.version)].setdefault(content, "acknowledged %s by %s" % (w.kind, w.replica))
        version_keys[w.version].add(w.key)
    for w in writes:  # Delete of an absent key: the store said "absent at version v"
        if w.outcome == "ok" and not w.found and w.version:
            contents[(w.key, w.version)].setdefault("<absent>", "delete reply from %s" % w.replica)
            version_keys[w.version].add(w.key)
    for r in reads:
        res.checked["integrity"] += 1
        where = "read on %s at %.3f" % (r.replica, r.start)
        if r.found:
            tok = parse_token(r.value)
            w = by_token.get(r.value)
            if tok is None or tok[0] != r.key or w is None or w.key != r.key:
                res.violated(
                    "integrity", 0, rule="value is no token written for this key",
                    key=r.key, version=r.version, value=r.value, replica=r.replica,
                    start=r.start,
                )
                continue
            if w.outcome == "fail":
                res.violated(
                    "integrity", 0, rule="value of a write that failed (phantom, C6)",
                    key=r.key, version=r.version, value=r.value, replica=r.replica,
                    start=r.start, write_start=w.start, write_end=w.end,
                )
            elif w.outcome == "ok" and w.version != r.version:
                res.violated(
                    "integrity", 0, rule="value read with another version than its write's",
                    key=r.key, version=r.version, value=r.value, write_version=w.version,
                    replica=r.replica, start=r.start,
                )
            content = r.value
        else:
            content = "<absent>"
        if r.version > 0:
            contents[(r.key, r.version)].setdefault(content, where)
            version_keys[r.version].add(r.key)
    token_versions = collections.defaultdict(dict)
    for r in reads:
        if r.found and r.value is not None:
            token_versions[r.value].setdefault(r.version, "read on %s at %.3f" % (r.replica, r.start))
    for token, versions in sorted(token_versions.items()):
        if len(versions) > 1:
            res.violated(
                "integrity", 0, rule="one write read with several versions", value=token,
                versions=versions,
            )
    for (key, version), seen in sorted(contents.items()):
        if len(seen) > 1:
            res.violated(
                "integrity", 0, rule="one (key, version), several contents", key=key,
                version=version, contents=seen,
            )
    for version, keys in sorted(version_keys.items()):
        if len(keys) > 1:
            res.violated(
                "integrity", 0, rule="one version, several keys", version=version,
                keys=sorted(keys),
            )


def check_c1(reads, res):
    groups = collections.defaultdict(list)
    for r in reads:
        if r.inc is not None:
            groups[(r.replica, r.inc, r.key)].append(r)
    for (replica, inc, key), rs in groups.items():
        by_start = sorted(rs, key=lambda r: r.start)
        by_end = sorted(rs, key=lambda r: r.end)
        i = 0
        best = None  # the read with the highest version among those ended so far
        for r in by_start:
            while i < len(by_end) and by_end[i].end < r.start:
                if best is None or by_end[i].version > best.version:
                    best = by_end[i]
                i += 1
            res.checked["C1"] += 1
            if best is not None and r.version < best.version:
                res.violated(
                    "C1", r.start - best.end, key=key, replica=replica, incarnation=inc,
                    earlier_version=best.version, earlier_end=best.end,
                    earlier_source=best.source, version=r.version, start=r.start,
                    source=r.source, after=r.start - best.end,
                )


def check_c2(reads, writes, res):
    groups = collections.defaultdict(list)
    for w in committed(writes):
        if w.kind in ("put", "delete"):
            groups[(w.replica, w.key)].append(w)
    index = {g: EarliestNewer(ws) for g, ws in groups.items()}
    for r in reads:
        idx = index.get((r.replica, r.key))
        if idx is None:
            continue
        res.checked["C2"] += 1
        w = idx.query(r.start, r.version)
        if w is not None:
            res.violated(
                "C2", r.start - w.end, key=r.key, replica=r.replica, write_version=w.version,
                write_end=w.end, version=r.version, start=r.start, source=r.source,
                after=r.start - w.end,
            )


def check_c4(reads, writes, res, max_staleness, slack):
    groups = collections.defaultdict(list)
    for w in committed(writes):
        groups[w.key].append(w)
    index = {k: EarliestNewer(ws) for k, ws in groups.items()}
    bound = max_staleness + slack
    for r in reads:
        res.checked["C4"] += 1
        idx = index.get(r.key)
        if idx is None:
            continue
        w = idx.query(r.start - bound, r.version)
        if w is not None:
            res.violated(
                "C4", r.start - w.end, key=r.key, replica=r.replica, version=r.version,
                source=r.source, start=r.start, newer_version=w.version, newer_kind=w.kind,
                newer_by=w.replica, newer_ack=w.end, stale_for=r.start - w.end,
                missed_writes=idx.newer_count(r.start - bound, r.version),
                phase=r.phase,
            )


def check_c5(history, res):
    rounds = [rec for rec in history if rec.get("op") == "c5_round"]
    if not rounds:
        res.notes.append("C5: no convergence round recorded (the run did not reach healing)")
        return
    last = rounds[-1]
    db = last["db"]
    unverified = collections.Counter()
    for replica, answers in sorted(last["replicas"].items()):
        for key, want in sorted(db.items()):
            res.checked["C5"] += 1
            got = answers.get(key)
            if got is None or "error" in got:
                unverified[replica] += 1
                continue
            same = (
                bool(got["found"]) == bool(want["found"])
                and int(got["version"]) == int(want["version"])
                and (not want["found"] or got.get("value") == want.get("value"))
            )
            if not same:
                res.violated(
                    "C5", 0, key=key, replica=replica, cached_version=got["version"],
                    cached_found=got["found"], cached_value=got.get("value"),
                    source=got.get("source"), db_version=want["version"],
                    db_found=want["found"], db_value=want.get("value"), round=last["round"],
                    time=last["time"],
                )
            elif got.get("source") not in ("cache", "local"):
                unverified[replica] += 1
    for replica, n in sorted(unverified.items()):
        res.findings.append(
            "C5 unverified on %s: %d of %d keys answered from the store or with an error "
            "in the last round (%.1f s after healing began): its cache could not be compared"
            % (replica, n, len(db), last.get("since_heal", 0.0))
        )
    res.notes.append(
        "C5: %d round(s); the last at %.3f s (%s)"
        % (len(rounds), last["time"], "converged" if last.get("converged") else "not converged")
    )


def availability(history, res):
    for rec in history:
        if rec.get("op") == "replica_exit" and not rec.get("expected"):
            res.findings.append(
                "replica %s (incarnation %s) exited by itself at %.3f s with %s%s"
                % (
                    rec["replica"], rec["inc"], rec["time"], rec.get("status"),
                    (": " + rec["why"]) if rec.get("why") else "",
                )
            )
        if rec.get("op") == "harness_error":
            res.findings.append("harness: %s" % rec.get("what"))


def check(history, max_staleness, slack):
    res = Result()
    reads = reads_of(history)
    writes = writes_of(history)
    check_integrity(reads, writes, res)
    check_c1(reads, res)
    check_c2(reads, writes, res)
    check_c4(reads, writes, res, max_staleness, slack)
    check_c5(history, res)
    availability(history, res)
    res.reads = reads
    res.writes = writes
    return res


def _fmt(v):
    if isinstance(v, float):
        return "%.3f" % v
    return str(v)


def faults_near(history, t, margin):
    out = []
    for rec in history:
        if rec.get("op") == "fault" and rec["start"] - margin <= t <= rec.get("end", rec["start"]) + margin:
            out.append("%s %s@%.1f-%.1f" % (rec["kind"], rec.get("target", ""), rec["start"], rec.get("end", rec["start"])))
    return out


def report(history, res, max_staleness, slack, worst=5, out=sys.stdout):
    w = out.write
    ops = collections.Counter()
    outcomes = collections.Counter()
    for rec in history:
        if rec.get("op") in WRITE_OPS + READ_OPS:
            ops[(rec["op"], rec.get("phase", "run"))] += 1
            outcomes[(rec["op"], rec.get("outcome"))] += 1
    w("history: %d records\n" % len(history))
    for (op, phase), n in sorted(ops.items()):
        w("  %-11s %-5s %7d\n" % (op, phase, n))
    w("  outcomes: %s\n" % ", ".join("%s %s %d" % (op, o, n) for (op, o), n in sorted(outcomes.items())))
    srcs = collections.Counter(r.source for r in res.reads)
    w("  successful key reads: %d (%s)\n" % (len(res.reads), ", ".join("%s %d" % kv for kv in sorted(srcs.items(), key=str))))
    w("  acknowledged writes: %d\n" % len(committed(res.writes)))
    faults = [rec for rec in history if rec.get("op") == "fault"]
    if faults:
        w("faults (%d):\n" % len(faults))
        for rec in faults:
            w("  %7.2f-%7.2f %-16s %s %s\n" % (rec["start"], rec.get("end", rec["start"]), rec["kind"], rec.get("target", ""), rec.get("detail", "")))
    w("rules: C4 bound = max_staleness %.3f s + slack %.3f s\n" % (max_staleness, slack))
    errors = collections.Counter()
    for rec in history:
        if rec.get("op") in WRITE_OPS + READ_OPS and rec.get("outcome") not in ("ok",):
            errors[(rec.get("replica"), rec.get("code"))] += 1
    if errors:
        w("errors by replica and code: %s\n" % ", ".join("%s %s %d" % (r, c, n) for (r, c), n in sorted(errors.items(), key=str)))
    for c in CHECKS:
        n = res.count(c)
        w("check %-9s %s  checked %d, violations %d\n" % (c, "PASS" if n == 0 else "FAIL", res.checked[c], n))
        vs = sorted(res.violations.get(c, []), key=lambda d: -d["_sort"])
        if c == "C4" and vs:
            by_fault = collections.Counter()
            for d in vs:
                lo, hi = d["newer_ack"] - max_staleness, d["start"]
                over = [f for f in faults if f["start"] <= hi and f.get("end", f["start"]) >= lo]
                by_fault[over[0]["kind"] if over else "(no fault)"] += 1
            w("    by the first fault overlapping [missed write's ack - max_staleness, read start]: %s\n" % ", ".join("%s %d" % kv for kv in by_fault.most_common()))
            w("    by phase: %s; by source: %s; by the missed write's kind: %s; worst stale_for %.3f s\n" % (
                dict(collections.Counter(d["phase"] for d in vs)), dict(collections.Counter(d["source"] for d in vs)),
                dict(collections.Counter(d["newer_kind"] for d in vs)),
                max(d["stale_for"] for d in vs)))
        shown = vs[:worst]
        if c == "C4":  # the worst of the run and of the final rounds apart
            shown = [d for d in vs if d["phase"] == "run"][:worst] + [d for d in vs if d["phase"] != "run"][:3]
        for d in shown:
            t = d.get("start", d.get("time"))
            near = faults_near(history, t, 6.0) if t is not None else []
            w("    " + ", ".join("%s=%s" % (k, _fmt(v)) for k, v in d.items() if k != "_sort") + "\n")
            if near:
                w("      faults near: %s\n" % "; ".join(near))
    for note in res.notes:
        w("note: %s\n" % note)
    w("availability findings: %d\n" % len(res.findings))
    for f in res.findings:
        w("  %s\n" % f)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("history")
    ap.add_argument("--max-staleness", type=float, default=None, help="seconds (default: from the history's config record)")
    ap.add_argument("--slack", type=float, default=None, help="seconds (default: from the history's config record)")
    args = ap.parse_args()
    history = load(args.history)
    cfg = next((r for r in history if r.get("op") == "config"), {})
    ms = args.max_staleness if args.max_staleness is not None else cfg.get("max_staleness", 1.0)
    slack = args.slack if args.slack is not None else cfg.get("slack", 0.25)
    res = check(history, ms, slack)
    report(history, res, ms, slack)
    return 1 if res.total() else 0


if __name__ == "__main__":
    sys.exit(main())
