package cachecar

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is what every call of this package fails with: the gRPC code and
// message, how many times the call was sent, and for writes whether the
// outcome is unknown. status.Code(err) and status.FromError(err) work on it.
type Error struct {
	Code    codes.Code
	Message string
	// OutcomeUnknown is true for a write that may or may not have been
	// applied: cachecar said "write outcome unknown", the connection broke
	// while the call was in flight, or its deadline passed after it was
	// sent. Re-read the key to learn what happened. Never true for reads.
	OutcomeUnknown bool
	// Attempts is how many times the call was sent (1: not retried).
	Attempts int
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", codeName(e.Code), e.Message)
	switch {
	case e.Attempts > 1 && e.OutcomeUnknown:
		s += fmt.Sprintf(" (after %d attempts; write outcome unknown)", e.Attempts)
	case e.Attempts > 1:
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	case e.OutcomeUnknown:
		s += " (write outcome unknown)"
	}
	return s
}

// GRPCStatus makes status.FromError and status.Code see the gRPC status.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// IsOutcomeUnknown reports whether err is a write whose outcome is unknown.
func IsOutcomeUnknown(err error) bool {
	e, ok := err.(*Error)
	return ok && e.OutcomeUnknown
}

// codeName spells a code as cache.proto does: UNAVAILABLE, INVALID_ARGUMENT.
func codeName(c codes.Code) string {
	names := map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
		codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
		codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
		codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
		codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
		codes.Unauthenticated: "UNAUTHENTICATED",
	}
	if n, ok := names[c]; ok {
		return n
	}
	return c.String()
}

// CodeName spells a gRPC code as cache.proto does ("UNAVAILABLE").
func CodeName(c codes.Code) string { return codeName(c) }
