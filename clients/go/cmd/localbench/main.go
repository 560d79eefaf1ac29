// Command localbench is the Go row of bench/run.py's local section
// (--local-reader Go=...): it reads --keys preloaded keys (key:%012d,
// shuffled) through the Go client's Get with Options.LocalReadPath on one
// goroutine pinned to its thread, times each call, then counts untimed calls
// per second, and prints the same `hits` JSON as bench/local's
// cachecar_local_bench. Every answer must be a local HIT of --value-bytes
// bytes, else it exits 1 naming the result.
//
//	localbench hits --path=FILE --keys=N --seconds=S --value-bytes=B [--target=ADDR] [--reader]
//
// --reader times localread.Reader.Get alone (without the client's Get).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"syscall"
	"time"

	cachecar "github.com/cachecar/cachecar/clients/go"
	"github.com/cachecar/cachecar/clients/go/localread"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "hits" {
		fmt.Fprintln(os.Stderr, "usage: localbench hits --path=FILE --keys=N --seconds=S --value-bytes=B [--target=ADDR] [--reader]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("hits", flag.ExitOnError)
	path := fs.String("path", "", "the published cache (cachecar's local_read_path)")
	keys := fs.Int("keys", 10000, "keys key:%012d preloaded into cachecar")
	seconds := fs.Float64("seconds", 5, "seconds of the untimed throughput run")
	valueBytes := fs.Int("value-bytes", 100, "expected value size")
	target := fs.String("target", "127.0.0.1:1", "cachecar's gRPC address (only for fallbacks)")
	ns := fs.String("namespace", "default", "namespace")
	readerOnly := fs.Bool("reader", false, "time localread.Reader.Get, not the client's Get")
	_ = fs.Parse(os.Args[2:])
	if *path == "" {
		fmt.Fprintln(os.Stderr, "localbench: --path is required")
		os.Exit(2)
	}
	runtime.LockOSThread()

	client, err := cachecar.New(cachecar.Options{Target: *target, LocalReadPath: *path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "localbench:", err)
		os.Exit(1)
	}
	defer client.Close()
	reader := localread.Open(*path)
	defer reader.Close()
	ctx := context.Background()
	get := func(k string) (localread.Result, int) {
		if *readerOnly {
			r, v, _ := reader.Get(*ns, []byte(k), false)
			return r, len(v)
		}
		v, err := client.Get(ctx, *ns, k)
		if err != nil {
			return localread.NotServing, 0
		}
		return v.Local, len(v.Value)
	}

	names := make([]string, *keys)
	for i := range names {
		names[i] = fmt.Sprintf("key:%012d", i)
	}
	rand.New(rand.NewSource(7)).Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, k := range names { // warm up, and check every key hits
		if r, n := get(k); r != localread.Hit || n != *valueBytes {
			fmt.Fprintf(os.Stderr, "%s: %s (value %d bytes); preload the keys first\n", k, r, n)
			os.Exit(1)
		}
	}
	samples := int(*seconds * 500000)
	if samples < 100000 {
		samples = 100000
	}
	lat := make([]int64, samples)
	fallbacks := 0
	for i := range lat {
		k := names[i%len(names)]
		t0 := time.Now()
		r, _ := get(k)
		lat[i] = int64(time.Since(t0))
		if r != localread.Hit {
			fallbacks++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		i := int(p / 100 * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return float64(lat[i]) / 1000
	}
	timer := make([]int64, 10000)
	for i := range timer {
		t0 := time.Now()
		timer[i] = int64(time.Since(t0))
	}
	sort.Slice(timer, func(i, j int) bool { return timer[i] < timer[j] })

	cpu0 := cpuSeconds()
	start := time.Now()
	end := start.Add(time.Duration(*seconds * float64(time.Second)))
	calls, i := 0, 0
	now := start
	for now.Before(end) {
		for n := 0; n < 1024; n++ {
			if r, _ := get(names[i]); r != localread.Hit {
				fallbacks++
			}
			if i++; i == len(names) {
				i = 0
			}
		}
		calls += 1024
		now = time.Now()
	}
	wall := now.Sub(start).Seconds()
	cpu := cpuSeconds() - cpu0
	out, _ := json.Marshal(map[string]interface{}{
		"mode": "hits", "keys": *keys, "value_bytes": *valueBytes, "calls": calls,
		"p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "p999_us": pct(99.9),
		"timer_us": float64(timer[len(timer)/2]) / 1000, "hits_per_second": float64(calls) / wall,
		"cpu_us_per_hit": cpu * 1e6 / float64(calls), "fallbacks": fallbacks,
	})
	fmt.Println(string(out))
	if fallbacks != 0 {
		os.Exit(1)
	}
}
