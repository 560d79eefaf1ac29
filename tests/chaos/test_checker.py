"""The checker's rules on small synthetic histories: for each rule one history
that passes and one that fails (and the edge cases that must not be
flagged). Run: tests/chaos/run.sh --unit (ctest: chaos_checker_rules)."""

import unittest

import checker

MS = 1.0  # max_staleness
SLACK = 0.25


def put(key, seq, version, start, end, replica="r0", outcome="ok", writer=None):
    rec = {"op": "put", "key": key, "value": "%s|%s|%d" % (key, writer or replica + "w", seq),
           "replica": replica, "start": start, "end": end, "outcome": outcome,
           "inc_start": 1, "inc_end": 1}
    if outcome == "ok":
        rec["version"] = version
    return rec


def sql_put(key, seq, version, start, end, outcome="ok"):
    rec = {"op": "sql_put", "key": key, "value": "%s|sql|%d" % (key, seq), "replica": "sql",
           "start": start, "end": end, "outcome": outcome}
    if outcome == "ok":
        rec["version"] = version
    return rec


def delete(key, version, start, end, replica="r0", found=True):
    return {"op": "delete", "key": key, "replica": replica, "start": start, "end": end,
            "outcome": "ok", "found": found, "version": version, "inc_start": 1, "inc_end": 1}


def get(key, version, start, end, replica="r1", value=None, found=True, inc=1, inc_end=None,
        source="cache", phase="run"):
    return {"op": "get", "key": key, "replica": replica, "start": start, "end": end,
            "outcome": "ok", "found": found, "version": version, "value": value,
            "source": source, "inc_start": inc, "inc_end": inc if inc_end is None else inc_end,
            "consistency": "cached", "phase": phase}


def tok(key, writer, seq):
    return "%s|%s|%d" % (key, writer, seq)


def run(history):
    return checker.check(history, MS, SLACK)


class Integrity(unittest.TestCase):
    def test_reads_carry_their_writes_value(self):
        h = [put("k", 1, 10, 0.0, 0.1), get("k", 10, 0.2, 0.3, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("integrity"), 0)

    def test_value_with_another_version_fails(self):
        h = [put("k", 1, 10, 0.0, 0.1), get("k", 11, 0.2, 0.3, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("integrity"), 1)

    def test_value_never_written_fails(self):
        h = [put("k", 1, 10, 0.0, 0.1), get("k", 10, 0.2, 0.3, value="k|nobody|7")]
        self.assertGreaterEqual(run(h).count("integrity"), 1)

    def test_value_of_another_key_fails(self):
        h = [put("j", 1, 10, 0.0, 0.1), get("k", 10, 0.2, 0.3, value=tok("j", "r0w", 1))]
        self.assertGreaterEqual(run(h).count("integrity"), 1)

    def test_unknown_outcome_write_may_be_read(self):
        h = [put("k", 1, None, 0.0, 4.0, outcome="unknown"), get("k", 12, 5.0, 5.1, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("integrity"), 0)

    def test_failed_write_read_is_a_phantom(self):
        h = [put("k", 1, None, 0.0, 0.1, outcome="fail"), get("k", 12, 5.0, 5.1, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("integrity"), 1)

    def test_one_version_two_contents_fails(self):
        h = [
            put("k", 1, None, 0.0, 4.0, outcome="unknown"),
            put("k", 2, None, 0.0, 4.0, outcome="unknown"),
            get("k", 12, 5.0, 5.1, value=tok("k", "r0w", 1)),
            get("k", 12, 5.0, 5.1, value=tok("k", "r0w", 2), replica="r2"),
        ]
        self.assertEqual(run(h).count("integrity"), 1)

    def test_absent_at_a_puts_version_fails(self):
        h = [put("k", 1, 10, 0.0, 0.1), get("k", 10, 0.2, 0.3, found=False)]
        self.assertEqual(run(h).count("integrity"), 1)

    def test_absent_at_the_deletes_version_passes(self):
        h = [put("k", 1, 10, 0.0, 0.1), delete("k", 11, 0.2, 0.3), get("k", 11, 0.4, 0.5, found=False)]
        self.assertEqual(run(h).count("integrity"), 0)

    def test_one_write_two_versions_fails(self):
        h = [
            put("k", 1, None, 0.0, 4.0, outcome="unknown"),
            get("k", 12, 5.0, 5.1, value=tok("k", "r0w", 1)),
            get("k", 14, 5.0, 5.1, value=tok("k", "r0w", 1), replica="r2"),
        ]
        self.assertGreaterEqual(run(h).count("integrity"), 1)


class C1(unittest.TestCase):
    def test_rising_versions_pass(self):
        h = [get("k", 10, 0.0, 0.1), get("k", 12, 0.2, 0.3), get("k", 12, 0.4, 0.5)]
        self.assertEqual(run(h).count("C1"), 0)

    def test_going_down_fails(self):
        h = [get("k", 12, 0.0, 0.1), get("k", 10, 0.2, 0.3)]
        self.assertEqual(run(h).count("C1"), 1)

    def test_overlapping_reads_are_not_ordered(self):
        h = [get("k", 12, 0.0, 0.3), get("k", 10, 0.2, 0.4)]
        self.assertEqual(run(h).count("C1"), 0)

    def test_other_incarnation_or_replica_is_apart(self):
        h = [get("k", 12, 0.0, 0.1), get("k", 10, 0.2, 0.3, inc=2), get("k", 10, 0.2, 0.3, replica="r2")]
        self.assertEqual(run(h).count("C1"), 0)

    def test_read_across_a_restart_is_not_attributed(self):
        h = [get("k", 12, 0.0, 0.1), get("k", 10, 0.2, 0.3, inc=1, inc_end=2)]
        self.assertEqual(run(h).count("C1"), 0)


class C2(unittest.TestCase):
    def history(self, second_writer, read_start):
        # r0 writes v8, then `second_writer` v10 (acknowledged at 0.2); r1 reads v8.
        return [put("k", 1, 8, 0.0, 0.05, replica="r0"),
                put("k", 2, 10, 0.1, 0.2, replica=second_writer),
                get("k", 8, read_start, 0.4, replica="r1", value=tok("k", "r0w", 1))]

    def test_read_your_write_passes(self):
        h = [put("k", 1, 10, 0.0, 0.1, replica="r1"), get("k", 10, 0.2, 0.3, value=tok("k", "r1w", 1))]
        self.assertEqual(run(h).count("C2"), 0)

    def test_older_version_after_own_write_fails(self):
        self.assertEqual(run(self.history("r1", 0.3)).count("C2"), 1)

    def test_read_that_began_before_the_ack_passes(self):
        self.assertEqual(run(self.history("r1", 0.15)).count("C2"), 0)

    def test_other_replicas_write_is_not_c2(self):
        self.assertEqual(run(self.history("r2", 0.3)).count("C2"), 0)


class C4(unittest.TestCase):
    def history(self, read_start):
        return [put("k", 1, 8, 0.0, 0.05), sql_put("k", 1, 10, 1.0, 1.1),
                get("k", 8, read_start, read_start + 0.01, value=tok("k", "r0w", 1))]

    def test_within_the_bound_passes(self):
        # The SQL commit was acknowledged at 1.1; the bound ends at 1.1 + 1.25.
        self.assertEqual(run(self.history(2.34)).count("C4"), 0)

    def test_past_the_bound_fails(self):
        res = run(self.history(2.36))
        self.assertEqual(res.count("C4"), 1)
        v = res.violations["C4"][0]
        self.assertEqual((v["newer_version"], v["newer_kind"], v["version"]), (10, "sql_put", 8))
        self.assertAlmostEqual(v["stale_for"], 1.26)

    def test_unknown_outcome_writes_do_not_count(self):
        h = [put("k", 1, 8, 0.0, 0.05), sql_put("k", 1, None, 1.0, 1.1, outcome="unknown"),
             get("k", 8, 9.0, 9.1, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("C4"), 0)

    def test_delete_of_an_absent_key_is_no_write(self):
        h = [put("k", 1, 8, 0.0, 0.05), delete("k", 9, 1.0, 1.1, found=False),
             get("k", 8, 9.0, 9.1, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("C4"), 0)

    def test_an_acknowledged_delete_counts(self):
        h = [put("k", 1, 8, 0.0, 0.05), delete("k", 9, 1.0, 1.1),
             get("k", 8, 9.0, 9.1, value=tok("k", "r0w", 1))]
        self.assertEqual(run(h).count("C4"), 1)


class C5(unittest.TestCase):
    def rounds(self, cached_version, source="cache"):
        db = {"k": {"found": True, "version": 10, "value": tok("k", "r0w", 2)}}
        got = {"found": True, "version": cached_version, "value": tok("k", "r0w", 2 if cached_version == 10 else 1),
               "source": source}
        return [{"op": "c5_round", "round": 1, "time": 50.0, "db": db, "replicas": {"r0": {"k": got}},
                 "converged": cached_version == 10}]

    def test_equal_to_postgres_passes(self):
        res = run(self.rounds(10))
        self.assertEqual(res.count("C5"), 0)
        self.assertEqual(res.findings, [])

    def test_stale_cache_fails(self):
        self.assertEqual(run(self.rounds(8)).count("C5"), 1)

    def test_answers_from_the_store_are_unverified(self):
        res = run(self.rounds(10, source="store"))
        self.assertEqual(res.count("C5"), 0)
        self.assertEqual(len(res.findings), 1)


class Availability(unittest.TestCase):
    def test_exit_by_itself_is_a_finding_not_a_violation(self):
        h = [{"op": "replica_exit", "replica": "r0", "inc": 1, "time": 3.0, "status": "exit 1",
              "expected": False, "why": "cannot start: cannot connect to PostgreSQL"},
             {"op": "replica_exit", "replica": "r1", "inc": 1, "time": 4.0, "status": "signal 9",
              "expected": True}]
        res = run(h)
        self.assertEqual(res.total(), 0)
        self.assertEqual(len(res.findings), 1)
        self.assertIn("cannot connect to PostgreSQL", res.findings[0])


if __name__ == "__main__":
    unittest.main()
