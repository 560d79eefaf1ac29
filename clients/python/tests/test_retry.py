"""Unit tests of the retry policy (cachecar._retry): which failures are sent
again, which writes are reported as outcome unknown, and the backoff."""
import unittest

import grpc

from cachecar._retry import RetryPolicy, classify

U = grpc.StatusCode.UNAVAILABLE


class ClassifyTest(unittest.TestCase):
    def check(self, write, code, message, want, sent=True, opt_in=False):
        self.assertEqual(classify(write, code, message, sent, opt_in), want, message)

    def test_reads(self):
        self.check(False, U, "Socket closed", (True, False))
        self.check(False, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", (False, False))
        self.check(False, grpc.StatusCode.ABORTED, "precondition failed", (False, False))

    def test_writes(self):
        self.check(True, U, "write outcome unknown (it may have committed): PostgreSQL connection lost", (False, True))
        self.check(True, U, "write outcome unknown (it may have committed): x", (True, True), opt_in=True)
        self.check(True, U, "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                   "Failed to connect to remote host: Connection refused", (True, False))
        self.check(True, U, "Socket closed", (False, True))
        self.check(True, U, "recvmsg:Connection reset by peer", (False, True))
        self.check(True, U, "cachecar cannot take more store work now (worker queue full, or shutting down)",
                   (True, False))
        self.check(True, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", (False, True))
        self.check(True, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", (False, False), sent=False)
        self.check(True, grpc.StatusCode.INVALID_ARGUMENT, "key is empty", (False, False))


class BackoffTest(unittest.TestCase):
    def test_doubles_to_the_cap_with_bounded_jitter(self):
        p = RetryPolicy()
        for attempt, want in {2: 0.025, 3: 0.05, 4: 0.1, 8: 1.0, 30: 1.0}.items():
            self.assertAlmostEqual(p.backoff(attempt, 0.5), want)
            self.assertGreaterEqual(p.backoff(attempt, 0.0), want * 0.8 - 1e-9)
            self.assertLessEqual(p.backoff(attempt, 0.999999), want * 1.2)


if __name__ == "__main__":
    unittest.main()
