package cachecar

import (
	"math"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// RetryPolicy says how UNAVAILABLE is retried: attempt n (n >= 2) waits
// min(MaxBackoff, InitialBackoff * Multiplier^(n-2)), +/- Jitter, never past
// the call's deadline. The defaults ride out ~4.5 s of a sidecar restarting.
type RetryPolicy struct {
	MaxAttempts    int // 1 turns retries off
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	Jitter         float64 // fraction of each wait, drawn uniformly
}

// DefaultRetryPolicy is the policy of a Client whose Options name none.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    10,
	InitialBackoff: 25 * time.Millisecond,
	MaxBackoff:     time.Second,
	Multiplier:     2,
	Jitter:         0.2,
}

// backoff is the wait before attempt `attempt` (2 for the first retry);
// unit is uniform in [0, 1).
func (p RetryPolicy) backoff(attempt int, unit float64) time.Duration {
	n := attempt - 2
	if n < 0 {
		n = 0
	}
	wait := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(n))
	if wait > float64(p.MaxBackoff) {
		wait = float64(p.MaxBackoff)
	}
	wait *= 1 + p.Jitter*(2*unit-1)
	if wait < 0 {
		wait = 0
	}
	return time.Duration(wait)
}

type callKind int

const (
	kindRead callKind = iota
	kindWrite
)

// gRPC's own words (grpc-go; C-core for the other libraries), lower case:
// the same lists as clients/cpp/src/retry.cc and clients/python.
var (
	neverConnectedWords = []string{
		"failed to connect to all addresses", "error while dialing", "connection refused",
		"dns resolution failed", "name resolution failure", "no addresses", "empty address list",
	}
	connectionBrokeWords = []string{
		"socket closed", "connection reset", "broken pipe", "goaway", "stream removed",
		"transport is closing", "error reading from", "eof", "connection closed", "rst_stream",
		"keepalive", "transport closed", "connection aborted", "cancelling all calls", "fd shutdown",
		"endpoint closing", "connection is draining", "connection was closed",
	}
)

const outcomeUnknownWords = "write outcome unknown"

func containsAny(s string, words []string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// verdict of a failed attempt: whether to send it again, and whether a
// write may have been applied. sent is false when the deadline had passed
// before the attempt started.
func classify(kind callKind, code codes.Code, message string, sent, retryOutcomeUnknown bool) (retry, outcomeUnknown bool) {
	if kind == kindRead {
		return code == codes.Unavailable, false
	}
	switch code {
	case codes.Unavailable:
		switch {
		case strings.Contains(strings.ToLower(message), outcomeUnknownWords):
			outcomeUnknown = true // cachecar says so
		case containsAny(message, neverConnectedWords):
			outcomeUnknown = false // never left this process
		default:
			// Broken mid-call: unknown. Anything else is cachecar refusing
			// the write before running it (store unreachable, queue full,
			// shutting down).
			outcomeUnknown = containsAny(message, connectionBrokeWords)
		}
		return !outcomeUnknown || retryOutcomeUnknown, outcomeUnknown
	case codes.DeadlineExceeded, codes.Canceled:
		// Sent and not answered: it may have run. Not retried.
		return false, sent
	default:
		return false, false // cachecar's answer: nothing was written
	}
}
