// Command cachecar-example is a small Go client for cachecar: it waits for the
// server to be healthy, then does a Put, a Get, a compare-and-set Put (once
// with the current version, once with a stale one, which fails with ABORTED),
// a BatchGet and a Delete, printing one line per call.
//
//	go run . -addr 127.0.0.1:50051
//
// Output lines are "STEP key=value ...", values of bytes printed quoted, so
// that tests/examples/run_go.sh can check them (the Python example prints the
// same lines).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cachecarv1 "github.com/cachecar/cachecar/examples/go/gen/cachecar/v1"
)

func main() {
	addr := flag.String("addr", defaultAddr(), "cachecar's gRPC address (host:port or unix:///path)")
	namespace := flag.String("namespace", "", `namespace to use ("" is cachecar's default namespace)`)
	prefix := flag.String("prefix", "example:", "prefix of the keys this example writes")
	wait := flag.Duration("wait", 10*time.Second, "how long to wait for cachecar to report SERVING")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each call")
	loadSeconds := flag.Duration("load-seconds", 0, "if set: run as bench/run.sh's load generator for this long (see load.go)")
	loadWarmup := flag.Duration("load-warmup", time.Second, "load: unmeasured time first")
	loadInflight := flag.Int("load-inflight", 1, "load: calls in flight (goroutines)")
	loadKeys := flag.Int("load-keys", 1000, "load: keys key:000000000000 .. N-1 to Get")
	flag.Parse()
	if *loadSeconds > 0 {
		if err := runLoad(*addr, *namespace, *loadInflight, *loadKeys, *loadWarmup, *loadSeconds); err != nil {
			fmt.Fprintln(os.Stderr, "cachecar-example:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*addr, *namespace, *prefix, *wait, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "cachecar-example:", err)
		os.Exit(1)
	}
}

// podSocket is where cachecar's sidecar puts its unix socket
// (deploy/k8s/example-app.yaml): the faster transport, used when present.
const podSocket = "/run/cachecar/cachecar.sock"

// defaultAddr is $CACHECAR_ADDR, else the pod's socket if it exists, else
// loopback TCP.
func defaultAddr() string {
	if a := os.Getenv("CACHECAR_ADDR"); a != "" {
		return a
	}
	if st, err := os.Stat(podSocket); err == nil && st.Mode()&os.ModeSocket != 0 {
		return "unix://" + podSocket
	}
	return "127.0.0.1:50051"
}

func run(addr, ns, prefix string, wait, timeout time.Duration) error {
	// cachecar is a sidecar on localhost: no TLS, and retry a refused
	// connection quickly rather than after gRPC's default 1 s backoff.
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()

	if err := waitServing(conn, wait); err != nil {
		return fmt.Errorf("cachecar at %s: %w", addr, err)
	}
	fmt.Printf("health addr=%s status=SERVING\n", addr)

	c := cachecarv1.NewCacheClient(conn)
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), timeout)
	}
	key, other, missing := prefix+"greeting", prefix+"other", prefix+"missing"

	// Put: an unconditional write; the store assigns the version.
	ctx, cancel := call()
	put, err := c.Put(ctx, &cachecarv1.PutRequest{Namespace: ns, Key: key, Value: []byte("hello, cachecar")})
	cancel()
	if err != nil {
		return fmt.Errorf("Put %s: %w", key, err)
	}
	v1 := put.GetVersion()
	fmt.Printf("put key=%s value=%q version=%d\n", key, "hello, cachecar", v1)

	// Get: served from the cache, which the Put filled.
	ctx, cancel = call()
	got, err := c.Get(ctx, &cachecarv1.GetRequest{Namespace: ns, Key: key})
	cancel()
	if err != nil {
		return fmt.Errorf("Get %s: %w", key, err)
	}
	fmt.Printf("get key=%s found=%t value=%q version=%d source=%s\n",
		key, got.GetFound(), got.GetValue(), got.GetVersion(), got.GetSource())

	// Compare-and-set: write only if the key is still at the version we read.
	ctx, cancel = call()
	cas, err := c.Put(ctx, &cachecarv1.PutRequest{Namespace: ns, Key: key, Value: []byte("hello again"),
		Precondition: &cachecarv1.PutRequest_IfVersion{IfVersion: got.GetVersion()}})
	cancel()
	if err != nil {
		return fmt.Errorf("compare-and-set Put %s at version %d: %w", key, got.GetVersion(), err)
	}
	fmt.Printf("cas-put key=%s value=%q if_version=%d version=%d\n", key, "hello again", got.GetVersion(), cas.GetVersion())

	// The same precondition again is now stale: ABORTED, and nothing written.
	// A real caller would re-read the key and retry.
	ctx, cancel = call()
	_, err = c.Put(ctx, &cachecarv1.PutRequest{Namespace: ns, Key: key, Value: []byte("lost update"),
		Precondition: &cachecarv1.PutRequest_IfVersion{IfVersion: v1}})
	cancel()
	switch st, _ := status.FromError(err); {
	case err == nil:
		return fmt.Errorf("compare-and-set Put %s with stale version %d succeeded; want ABORTED", key, v1)
	case st.Code() == codes.Aborted:
		fmt.Printf("cas-put-stale key=%s value=%q if_version=%d code=%s message=%q\n", key, "lost update", v1, st.Code(), st.Message())
	default:
		return fmt.Errorf("compare-and-set Put %s with stale version %d: %w (want ABORTED)", key, v1, err)
	}

	ctx, cancel = call()
	put, err = c.Put(ctx, &cachecarv1.PutRequest{Namespace: ns, Key: other, Value: []byte("world")})
	cancel()
	if err != nil {
		return fmt.Errorf("Put %s: %w", other, err)
	}
	fmt.Printf("put key=%s value=%q version=%d\n", other, "world", put.GetVersion())

	// BatchGet: one entry per key, in request order; absent keys have found=false.
	ctx, cancel = call()
	batch, err := c.BatchGet(ctx, &cachecarv1.BatchGetRequest{Namespace: ns, Keys: []string{key, other, missing}})
	cancel()
	if err != nil {
		return fmt.Errorf("BatchGet: %w", err)
	}
	for _, e := range batch.GetEntries() {
		fmt.Printf("batchget key=%s found=%t value=%q version=%d source=%s\n",
			e.GetKey(), e.GetFound(), e.GetValue(), e.GetVersion(), e.GetSource())
	}

	// Delete: the delete gets a version too; afterwards Get reports found=false.
	ctx, cancel = call()
	del, err := c.Delete(ctx, &cachecarv1.DeleteRequest{Namespace: ns, Key: key})
	cancel()
	if err != nil {
		return fmt.Errorf("Delete %s: %w", key, err)
	}
	fmt.Printf("delete key=%s found=%t version=%d\n", key, del.GetFound(), del.GetVersion())

	ctx, cancel = call()
	got, err = c.Get(ctx, &cachecarv1.GetRequest{Namespace: ns, Key: key})
	cancel()
	if err != nil {
		return fmt.Errorf("Get %s after Delete: %w", key, err)
	}
	fmt.Printf("get-after-delete key=%s found=%t version=%d source=%s\n", key, got.GetFound(), got.GetVersion(), got.GetSource())
	fmt.Println("done")
	return nil
}

// waitServing polls the standard health service until cachecar answers
// SERVING, for at most wait. Each check waits for the connection to come up
// (WaitForReady), so a server that is still starting is not an error.
func waitServing(conn *grpc.ClientConn, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	health := healthpb.NewHealthClient(conn)
	var last error
	for {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("health status %s", resp.GetStatus())
		}
		if last == nil || ctx.Err() == nil {
			last = err // keep the last error from before the deadline: it says more
		}
		// NOT_SERVING (starting or draining): ask again shortly.
		select {
		case <-ctx.Done():
			return fmt.Errorf("not SERVING after %s: %w", wait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
