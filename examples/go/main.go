// Command cachecar-example is a small Go app using cachecar's client library
// (clients/go): it waits for the server to be healthy, then does a Put, a
// Get, a compare-and-set Put (once with the current version, once with a
// stale one, which fails with ABORTED), a BatchGet and a Delete, printing one
// line per call.
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

	"google.golang.org/grpc/codes"

	cachecar "github.com/cachecar/cachecar/clients/go"
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
	// The client library: deadlines per call (DefaultTimeout), retries with
	// backoff on UNAVAILABLE, writes never repeated when their outcome is
	// unknown. In a pod with local reads (deploy/k8s), CACHECAR_LOCAL_READ_PATH
	// names the sidecar's published cache: Gets then answer hits from shared
	// memory and fall back to gRPC for the rest (docs/LOCAL_READS.md).
	c, err := cachecar.New(cachecar.Options{Target: addr, DefaultTimeout: timeout,
		LocalReadPath: os.Getenv("CACHECAR_LOCAL_READ_PATH")})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	ctx := context.Background()

	if err := c.WaitServing(ctx, wait); err != nil {
		return fmt.Errorf("cachecar at %s: %w", addr, err)
	}
	fmt.Printf("health addr=%s status=SERVING\n", addr)

	key, other, missing := prefix+"greeting", prefix+"other", prefix+"missing"

	// Put: an unconditional write; the store assigns the version.
	put, err := c.Put(ctx, ns, key, []byte("hello, cachecar"))
	if err != nil {
		return fmt.Errorf("Put %s: %w", key, err)
	}
	v1 := put.Version
	fmt.Printf("put key=%s value=%q version=%d\n", key, "hello, cachecar", v1)

	// Get: served from the cache, which the Put filled.
	got, err := c.Get(ctx, ns, key)
	if err != nil {
		return fmt.Errorf("Get %s: %w", key, err)
	}
	fmt.Printf("get key=%s found=%t value=%q version=%d source=%s\n",
		key, got.Found, got.Value, got.Version, got.Source)

	// Compare-and-set: write only if the key is still at the version we read.
	cas, err := c.Put(ctx, ns, key, []byte("hello again"), cachecar.IfVersion(got.Version))
	if err != nil {
		return fmt.Errorf("compare-and-set Put %s at version %d: %w", key, got.Version, err)
	}
	fmt.Printf("cas-put key=%s value=%q if_version=%d version=%d\n", key, "hello again", got.Version, cas.Version)

	// The same precondition again is now stale: ABORTED, and nothing written.
	// A real caller would re-read the key and retry.
	_, err = c.Put(ctx, ns, key, []byte("lost update"), cachecar.IfVersion(v1))
	switch e, _ := err.(*cachecar.Error); {
	case err == nil:
		return fmt.Errorf("compare-and-set Put %s with stale version %d succeeded; want ABORTED", key, v1)
	case e != nil && e.Code == codes.Aborted:
		fmt.Printf("cas-put-stale key=%s value=%q if_version=%d code=%s message=%q\n", key, "lost update", v1, e.Code, e.Message)
	default:
		return fmt.Errorf("compare-and-set Put %s with stale version %d: %w (want ABORTED)", key, v1, err)
	}

	put, err = c.Put(ctx, ns, other, []byte("world"))
	if err != nil {
		return fmt.Errorf("Put %s: %w", other, err)
	}
	fmt.Printf("put key=%s value=%q version=%d\n", other, "world", put.Version)

	// BatchGet: one entry per key, in request order; absent keys have Found=false.
	batch, err := c.BatchGet(ctx, ns, []string{key, other, missing})
	if err != nil {
		return fmt.Errorf("BatchGet: %w", err)
	}
	for _, e := range batch.Entries {
		fmt.Printf("batchget key=%s found=%t value=%q version=%d source=%s\n",
			e.Key, e.Found, e.Value, e.Version, e.Source)
	}

	// Delete: the delete gets a version too; afterwards Get reports found=false.
	del, err := c.Delete(ctx, ns, key)
	if err != nil {
		return fmt.Errorf("Delete %s: %w", key, err)
	}
	fmt.Printf("delete key=%s found=%t version=%d\n", key, del.Found, del.Version)

	got, err = c.Get(ctx, ns, key)
	if err != nil {
		return fmt.Errorf("Get %s after Delete: %w", key, err)
	}
	fmt.Printf("get-after-delete key=%s found=%t version=%d source=%s\n", key, got.Found, got.Version, got.Source)
	fmt.Println("done")
	return nil
}
