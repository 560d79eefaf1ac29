package cachecar

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name          string
		kind          callKind
		code          codes.Code
		msg           string
		sent, optIn   bool
		retry, unknow bool
	}{
		{"read unavailable retried", kindRead, codes.Unavailable, "error reading from server: EOF", true, false, true, false},
		{"read deadline not retried", kindRead, codes.DeadlineExceeded, "", true, false, false, false},
		{"read aborted not retried", kindRead, codes.Aborted, "precondition failed", true, false, false, false},
		{"write: cachecar says unknown", kindWrite, codes.Unavailable, "write outcome unknown (it may have committed): PostgreSQL connection lost: x", true, false, false, true},
		{"write: unknown, caller opted in", kindWrite, codes.Unavailable, "write outcome unknown (it may have committed): x", true, true, true, true},
		{"write: never connected (grpc-go)", kindWrite, codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`, true, false, true, false},
		{"write: never connected (C-core)", kindWrite, codes.Unavailable, "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused", true, false, true, false},
		{"write: broke mid-call", kindWrite, codes.Unavailable, "error reading from server: EOF", true, false, false, true},
		{"write: socket closed", kindWrite, codes.Unavailable, "Socket closed", true, false, false, true},
		{"write: cachecar refused it", kindWrite, codes.Unavailable, "cachecar cannot take more store work now (worker queue full, or shutting down); retry with backoff", true, false, true, false},
		{"write: deadline after sending", kindWrite, codes.DeadlineExceeded, "context deadline exceeded", true, false, false, true},
		{"write: deadline before sending", kindWrite, codes.DeadlineExceeded, "context deadline exceeded", false, false, false, false},
		{"write: aborted is an answer", kindWrite, codes.Aborted, "precondition failed", true, false, false, false},
	}
	for _, c := range cases {
		retry, unknown := classify(c.kind, c.code, c.msg, c.sent, c.optIn)
		if retry != c.retry || unknown != c.unknow {
			t.Errorf("%s: classify = (retry %t, unknown %t), want (%t, %t)", c.name, retry, unknown, c.retry, c.unknow)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := DefaultRetryPolicy
	for attempt, want := range map[int]time.Duration{2: 25 * time.Millisecond, 3: 50 * time.Millisecond, 4: 100 * time.Millisecond, 8: time.Second, 30: time.Second} {
		if got := p.backoff(attempt, 0.5); got != want {
			t.Errorf("backoff(%d, no jitter) = %v, want %v", attempt, got, want)
		}
		lo, hi := p.backoff(attempt, 0), p.backoff(attempt, 0.999999)
		if lo < want*8/10-time.Microsecond || hi > want*12/10 || lo >= hi {
			t.Errorf("backoff(%d) jitter range [%v, %v] not within 20%% of %v", attempt, lo, hi, want)
		}
	}
}
