package main

// The example as a load generator, for bench/run.sh's grpc-go row: with
// -load-seconds > 0 it sends Gets of key:000000000000 .. -load-keys-1
// (preloaded by the harness) from -load-inflight goroutines sharing one
// connection, closed loop, and prints one JSON line: calls (warm-up
// included), ok, errors, rps, p50_us and p99_us over the measured part.
// That is how an app written in Go calls cachecar.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cachecar "github.com/cachecar/cachecar/clients/go"
	cachecarv1 "github.com/cachecar/cachecar/clients/go/gen/cachecar/v1"
)

type loadResult struct {
	Calls  int64   `json:"calls"`
	OK     int64   `json:"ok"`
	Errors int64   `json:"errors"`
	RPS    float64 `json:"rps"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	First  string  `json:"first_error"`
}

func runLoad(addr, ns string, inflight, keys int, warmup, seconds time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	// Health through the client library; the measured Gets are bare stub
	// calls (the grpc-go row: no library logic in the numbers).
	lib, err := cachecar.New(cachecar.Options{Conn: conn})
	if err != nil {
		return err
	}
	if err := lib.WaitServing(context.Background(), 10*time.Second); err != nil {
		return fmt.Errorf("cachecar at %s: %w", addr, err)
	}
	c := cachecarv1.NewCacheClient(conn)
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+seconds)
	var mu sync.Mutex
	var result loadResult
	var latencies []float64
	var wg sync.WaitGroup
	for g := 0; g < inflight; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var mine []float64
			var calls, errs int64
			var first string
			for i := g; ; i += inflight {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				key := fmt.Sprintf("key:%012d", (i*7919)%keys)
				_, err := c.Get(context.Background(), &cachecarv1.GetRequest{Namespace: ns, Key: key})
				calls++
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				if t0.After(measureFrom) {
					mine = append(mine, float64(time.Since(t0).Microseconds()))
				}
			}
			mu.Lock()
			result.Calls += calls
			result.Errors += errs
			if result.First == "" {
				result.First = first
			}
			latencies = append(latencies, mine...)
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	sort.Float64s(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		i := int(p / 100 * float64(len(latencies)))
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return latencies[i]
	}
	result.OK = int64(len(latencies))
	result.RPS = float64(result.OK) / seconds.Seconds()
	result.P50us, result.P99us = pct(50), pct(99)
	return json.NewEncoder(os.Stdout).Encode(result)
}
