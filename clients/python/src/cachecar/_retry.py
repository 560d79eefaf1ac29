"""When a failed attempt is retried, and how long to wait before the next.

The same policy and the same lists of gRPC transport messages as
clients/cpp/src/retry.cc and clients/go/retry.go; the rules are in
clients/conformance/README.md. Pure functions.
"""
from dataclasses import dataclass

import grpc

# gRPC's own words (C-core, which grpcio is; grpc-go for the Go library),
# lower case.
_NEVER_CONNECTED = (
    "failed to connect to all addresses", "error while dialing", "connection refused",
    "dns resolution failed", "name resolution failure", "no addresses", "empty address list",
)
_CONNECTION_BROKE = (
    "socket closed", "connection reset", "broken pipe", "goaway", "stream removed",
    "transport is closing", "error reading from", "eof", "connection closed", "rst_stream",
    "keepalive", "transport closed", "connection aborted", "cancelling all calls", "fd shutdown",
    "endpoint closing", "connection is draining", "connection was closed",
)
_OUTCOME_UNKNOWN = "write outcome unknown"


@dataclass(frozen=True)
class RetryPolicy:
    """How UNAVAILABLE is retried: attempt n (n >= 2) waits
    min(max_backoff, initial_backoff * multiplier**(n-2)), +/- jitter, never
    past the call's deadline. The defaults ride out ~4.5 s of a sidecar
    restarting."""
    max_attempts: int = 10  # 1 turns retries off
    initial_backoff: float = 0.025  # seconds
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2  # fraction of each wait, drawn uniformly

    def backoff(self, attempt: int, unit: float) -> float:
        """The wait in seconds before attempt `attempt` (2 for the first
        retry); `unit` is uniform in [0, 1)."""
        wait = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, attempt - 2))
        return max(0.0, wait * (1 + self.jitter * (2 * unit - 1)))


def _contains_any(message: str, words) -> bool:
    lower = message.lower()
    return any(w in lower for w in words)


def never_connected(message: str) -> bool:
    """gRPC's message for a connection that was never made."""
    return _contains_any(message, _NEVER_CONNECTED)


def connection_broke(message: str) -> bool:
    """gRPC's message for a connection that broke with the call in flight."""
    return _contains_any(message, _CONNECTION_BROKE)


def classify(write: bool, code: grpc.StatusCode, message: str, sent: bool,
             retry_outcome_unknown: bool):
    """(retry, outcome_unknown) for a failed attempt. `sent` is False when the
    deadline had passed before the attempt started."""
    if not write:
        return code == grpc.StatusCode.UNAVAILABLE, False
    if code == grpc.StatusCode.UNAVAILABLE:
        if _OUTCOME_UNKNOWN in message.lower():
            unknown = True  # cachecar says so
        elif never_connected(message):
            unknown = False  # never left this process
        else:
            # Broken mid-call: unknown. Anything else is cachecar refusing the
            # write before running it (store unreachable, queue full, draining).
            unknown = connection_broke(message)
        return (not unknown) or retry_outcome_unknown, unknown
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return False, sent  # sent and not answered: it may have run
    return False, False  # cachecar's answer: nothing was written
