package cachecar

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cachecar/cachecar/clients/go/localread"
)

// Without a published cache file, Get falls back to gRPC (here: nobody
// listens, so UNAVAILABLE after retries, never a local answer).
func TestGetFallsBackToGRPCWithoutAPublishedCache(t *testing.T) {
	c, err := New(Options{Target: "127.0.0.1:1", LocalReadPath: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(context.Background(), "", "k", WithTimeout(300*time.Millisecond))
	e, ok := err.(*Error)
	if !ok || e.Code != codes.Unavailable || e.Attempts < 2 {
		t.Fatalf("Get = %v, want UNAVAILABLE after retries over gRPC", err)
	}
	if r, _, _ := c.local.Get("", []byte("k"), false); r != localread.NotServing {
		t.Fatalf("local reader: %s, want NOT_SERVING", r)
	}
}
