// Package cachecar is the Go client of cachecar, the cache sidecar: Get,
// BatchGet, Put, Delete, Invalidate, Stats and Watch over gRPC, with a
// deadline per call and retries with backoff on UNAVAILABLE that never
// repeat a write whose outcome is unknown unless the caller asks (and then
// the answer says so).
//
//	c, err := cachecar.New(cachecar.Options{Target: "127.0.0.1:50051"})
//	put, err := c.Put(ctx, "users", "user:1", []byte("alice"))
//	got, err := c.Get(ctx, "users", "user:1")
//	if err == nil && got.Found { use(got.Value, got.Version) }
//
// A Client is safe for concurrent use; a WatchStream is read by one
// goroutine at a time (Close may be called from any).
package cachecar

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	cachecarv1 "github.com/cachecar/cachecar/clients/go/gen/cachecar/v1"
	"github.com/cachecar/cachecar/clients/go/localread"
)

// Options configure a Client. The zero value of each field means its default.
type Options struct {
	// Target is host:port or unix:///abs/path; default 127.0.0.1:50051.
	// Ignored when Conn is set.
	Target string
	// Conn, if set, is used instead of dialing Target (TLS, interceptors).
	// The Client does not close it.
	Conn grpc.ClientConnInterface
	// DefaultTimeout is the deadline of a call that names none (and whose
	// context has none sooner); default 5 s.
	DefaultTimeout time.Duration
	// Retry; nil means DefaultRetryPolicy.
	Retry *RetryPolicy
	// MaxReceiveMessageBytes; default 64 MiB (cachecar caps its answers at
	// max_message_bytes, 4 MiB by default).
	MaxReceiveMessageBytes int
	// DialOptions are added to the Client's own when it dials Target.
	DialOptions []grpc.DialOption
	// LocalReadPath, if set, is cachecar's published cache (its
	// local_read_path, mounted read-only in the app's container): Get
	// answers hits from it without a gRPC call, and falls back to gRPC for
	// everything it cannot answer exactly as cachecar would
	// (docs/LOCAL_READS.md). Value.Local says which happened.
	LocalReadPath string
	// LocalNoHitReports: do not report hits served locally to the
	// sidecar's eviction (docs/LOCAL_READS.md "Hit reports"; on by default,
	// so keys read only locally are not evicted as unused).
	LocalNoHitReports bool
}

// Client calls one cachecar sidecar.
type Client struct {
	conn    *grpc.ClientConn // nil when Options.Conn was given
	cc      grpc.ClientConnInterface
	stub    cachecarv1.CacheClient
	timeout time.Duration
	retry   RetryPolicy
	local   *localread.Reader // nil without Options.LocalReadPath
	mu      sync.Mutex
	rng     *rand.Rand // guarded by mu
}

// New makes a Client; it connects lazily, so New succeeds while the sidecar
// is still starting.
func New(opts Options) (*Client, error) {
	c := &Client{timeout: opts.DefaultTimeout, retry: DefaultRetryPolicy,
		rng: rand.New(rand.NewSource(time.Now().UnixNano()))}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if opts.Retry != nil {
		c.retry = *opts.Retry
	}
	conn := opts.Conn
	if conn == nil {
		target := opts.Target
		if target == "" {
			target = "127.0.0.1:50051"
		}
		maxRecv := opts.MaxReceiveMessageBytes
		if maxRecv <= 0 {
			maxRecv = 64 << 20
		}
		dial := append([]grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)),
			// A sidecar on localhost: reconnect quickly after it restarts
			// rather than after gRPC's default 1 s (then up to 120 s).
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}),
		}, opts.DialOptions...)
		cc, err := grpc.NewClient(target, dial...)
		if err != nil {
			return nil, err
		}
		c.conn, conn = cc, cc
	}
	c.cc = conn
	c.stub = cachecarv1.NewCacheClient(conn)
	if opts.LocalReadPath != "" {
		c.local = localread.OpenWith(opts.LocalReadPath, localread.Options{NoHitReports: opts.LocalNoHitReports})
	}
	return c, nil
}

// Close closes the connection the Client dialed (not one it was given) and
// unmaps the published cache.
func (c *Client) Close() error {
	if c.local != nil {
		c.local.Close()
	}
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Source says where an answer came from.
type Source int

const (
	SourceUnspecified Source = iota
	SourceCache              // the cache held the key (a value, or its absence)
	SourceStore              // the store was read for this call
	// SourceLocal: answered from the published cache in shared memory
	// (Options.LocalReadPath), without a gRPC call. Not a cache.proto value.
	SourceLocal Source = 100
)

// String is the cache.proto name: SOURCE_CACHE (and SOURCE_LOCAL).
func (s Source) String() string {
	if s == SourceLocal {
		return "SOURCE_LOCAL"
	}
	return cachecarv1.Source(s).String()
}

// Value is a Get's answer.
type Value struct {
	Found    bool
	Value    []byte
	Version  uint64 // of the value, or of the delete when !Found
	Source   Source
	Attempts int // gRPC attempts; 0 when answered locally
	// Local is the local reader's answer when Options.LocalReadPath is set:
	// localread.Hit or Absent (Source is SourceLocal), else the reason it
	// fell back to gRPC (Miss, Expired, Stale, NotServing, Strong, ...).
	Local localread.Result
}

// BatchEntry answers one key of a BatchGet.
type BatchEntry struct {
	Key     string
	Found   bool
	Value   []byte
	Version uint64
	Source  Source
}

// BatchValues is a BatchGet's answer: one entry per requested key, in order.
type BatchValues struct {
	Entries  []BatchEntry
	Attempts int
}

// PutResult is a Put's answer.
type PutResult struct {
	Version  uint64
	Attempts int
	// RetriedOutcomeUnknown: an earlier attempt's outcome was unknown and
	// the write was sent again (only with RetryOutcomeUnknown()): it may
	// have been applied twice.
	RetriedOutcomeUnknown bool
}

// DeleteResult is a Delete's answer.
type DeleteResult struct {
	Found                 bool
	Version               uint64
	Attempts              int
	RetriedOutcomeUnknown bool
}

// InvalidateResult is an Invalidate's answer.
type InvalidateResult struct {
	Dropped  uint64
	Attempts int
}

// CallOption tunes one call.
type CallOption func(*callConfig)

type callConfig struct {
	timeout      time.Duration
	strong       bool
	ifVersion    *uint64
	ifAbsent     bool
	ttl          time.Duration
	retryUnknown bool
	broadcast    bool
}

// WithTimeout sets the call's deadline over all its attempts (the context's
// deadline still applies when it is sooner).
func WithTimeout(d time.Duration) CallOption { return func(c *callConfig) { c.timeout = d } }

// Strong reads the store (CONSISTENCY_STRONG) and refreshes the cache.
func Strong() CallOption { return func(c *callConfig) { c.strong = true } }

// IfVersion makes a Put or Delete conditional on the key's current version.
func IfVersion(v uint64) CallOption { return func(c *callConfig) { c.ifVersion = &v } }

// IfAbsent makes a Put create the key only if it holds no value.
func IfAbsent() CallOption { return func(c *callConfig) { c.ifAbsent = true } }

// TTL sets the cached copy's time to live (the stored value does not expire).
func TTL(d time.Duration) CallOption { return func(c *callConfig) { c.ttl = d } }

// RetryOutcomeUnknown declares a write idempotent: it is retried even when
// its outcome is unknown, and the result's RetriedOutcomeUnknown says so.
func RetryOutcomeUnknown() CallOption { return func(c *callConfig) { c.retryUnknown = true } }

// Broadcast makes an Invalidate reach every other replica too.
func Broadcast() CallOption { return func(c *callConfig) { c.broadcast = true } }

func configOf(opts []CallOption) *callConfig {
	cfg := &callConfig{}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

func (c *Client) uniform() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64()
}

func (c *Client) callTimeout(cfg *callConfig) time.Duration {
	if cfg.timeout > 0 {
		return cfg.timeout
	}
	return c.timeout
}

// run sends attempt until it succeeds, fails for good, or the deadline
// passes; it returns how many attempts it made and whether a write was
// re-sent after an unknown outcome.
func (c *Client) run(ctx context.Context, kind callKind, cfg *callConfig, attempt func(context.Context) error) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout(cfg))
	defer cancel()
	deadline, _ := ctx.Deadline()
	unknownBefore := false
	var previous *Error // the failure that made us retry
	for n := 1; ; n++ {
		inTime := time.Now().Before(deadline)
		readyBefore := c.ready()
		err := attempt(ctx)
		if err == nil {
			return n, unknownBefore, nil
		}
		st := status.Convert(err)
		// A call can only have been sent over a connection that was up at
		// some point: not before it and not after it means never sent (the
		// deadline passed while the channel was still connecting).
		sent := inTime && (readyBefore || c.ready())
		if !sent && st.Code() == codes.DeadlineExceeded && previous != nil {
			previous.Attempts = n
			return n, unknownBefore, previous // the budget ran out retrying: say why
		}
		retry, unknown := classify(kind, st.Code(), st.Message(), sent, cfg.retryUnknown)
		unknownBefore = unknownBefore || unknown
		failed := &Error{Code: st.Code(), Message: st.Message(), OutcomeUnknown: kind == kindWrite && unknownBefore, Attempts: n}
		previous = failed
		if !retry || n >= c.retry.MaxAttempts {
			return n, unknownBefore, failed
		}
		wait := c.retry.backoff(n+1, c.uniform())
		if !time.Now().Add(wait).Before(deadline) {
			return n, unknownBefore, failed
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return n, unknownBefore, failed
		}
	}
}

// ready reports whether the connection is up (true when the Client was given
// a connection it cannot ask).
func (c *Client) ready() bool {
	if c.conn == nil {
		return true
	}
	return c.conn.GetState() == connectivity.Ready
}

func consistency(cfg *callConfig) cachecarv1.Consistency {
	if cfg.strong {
		return cachecarv1.Consistency_CONSISTENCY_STRONG
	}
	return cachecarv1.Consistency_CONSISTENCY_CACHED
}

// Get reads one key. An empty namespace means "default".
func (c *Client) Get(ctx context.Context, ns, key string, opts ...CallOption) (*Value, error) {
	cfg := configOf(opts)
	local := localread.NotTried
	if c.local != nil {
		var v []byte
		var version uint64
		local, v, version = c.local.Get(ns, []byte(key), cfg.strong)
		if !local.Fallback() {
			return &Value{Found: local == localread.Hit, Value: v, Version: version, Source: SourceLocal, Local: local}, nil
		}
	}
	req := &cachecarv1.GetRequest{Namespace: ns, Key: key, Consistency: consistency(cfg)}
	var resp *cachecarv1.GetResponse
	n, _, err := c.run(ctx, kindRead, cfg, func(ctx context.Context) (err error) {
		resp, err = c.stub.Get(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Value{Found: resp.GetFound(), Value: resp.GetValue(), Version: resp.GetVersion(),
		Source: Source(resp.GetSource()), Attempts: n, Local: local}, nil
}

// BatchGet reads many keys of one namespace. With Options.LocalReadPath,
// the keys the published cache answers come from it (SourceLocal) and only
// the rest go in one gRPC BatchGet; the entries are in request order either
// way (Attempts 0 when no gRPC call was needed).
func (c *Client) BatchGet(ctx context.Context, ns string, keys []string, opts ...CallOption) (*BatchValues, error) {
	cfg := configOf(opts)
	var out *BatchValues
	var rest []int // positions of the keys for gRPC
	grpcKeys := keys
	if c.local != nil && len(keys) > 0 && !cfg.strong {
		out = &BatchValues{Entries: make([]BatchEntry, len(keys))}
		grpcKeys = nil
		for i, k := range keys {
			r, v, version := c.local.Get(ns, []byte(k), false)
			if r == localread.BadKey || r == localread.UnknownNamespace {
				// An error: gRPC's answer names the key as in the whole batch.
				out, rest, grpcKeys = nil, nil, keys
				break
			}
			if r.Fallback() {
				rest = append(rest, i)
				grpcKeys = append(grpcKeys, k)
				continue
			}
			out.Entries[i] = BatchEntry{Key: k, Found: r == localread.Hit, Value: v, Version: version, Source: SourceLocal}
		}
		if out != nil && len(rest) == 0 {
			return out, nil
		}
	}
	req := &cachecarv1.BatchGetRequest{Namespace: ns, Keys: grpcKeys, Consistency: consistency(cfg)}
	var resp *cachecarv1.BatchGetResponse
	n, _, err := c.run(ctx, kindRead, cfg, func(ctx context.Context) (err error) {
		resp, err = c.stub.BatchGet(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetEntries()) != len(grpcKeys) {
		return nil, status.Errorf(codes.Internal, "BatchGet answered %d entries for %d keys", len(resp.GetEntries()), len(grpcKeys))
	}
	if out == nil {
		out = &BatchValues{Entries: make([]BatchEntry, len(grpcKeys))}
	}
	out.Attempts = n
	for j, e := range resp.GetEntries() {
		at := j
		if rest != nil {
			at = rest[j]
		}
		out.Entries[at] = BatchEntry{Key: e.GetKey(), Found: e.GetFound(), Value: e.GetValue(),
			Version: e.GetVersion(), Source: Source(e.GetSource())}
	}
	return out, nil
}

// Put writes a value through to the store (options: IfVersion, IfAbsent,
// TTL, RetryOutcomeUnknown, WithTimeout).
func (c *Client) Put(ctx context.Context, ns, key string, value []byte, opts ...CallOption) (*PutResult, error) {
	cfg := configOf(opts)
	req := &cachecarv1.PutRequest{Namespace: ns, Key: key, Value: value, TtlMs: uint64(cfg.ttl / time.Millisecond)}
	if cfg.ifVersion != nil {
		req.Precondition = &cachecarv1.PutRequest_IfVersion{IfVersion: *cfg.ifVersion}
	} else if cfg.ifAbsent {
		req.Precondition = &cachecarv1.PutRequest_IfAbsent{IfAbsent: true}
	}
	var resp *cachecarv1.PutResponse
	n, retried, err := c.run(ctx, kindWrite, cfg, func(ctx context.Context) (err error) {
		resp, err = c.stub.Put(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &PutResult{Version: resp.GetVersion(), Attempts: n, RetriedOutcomeUnknown: retried}, nil
}

// Delete deletes a key in the store (options: IfVersion, RetryOutcomeUnknown,
// WithTimeout).
func (c *Client) Delete(ctx context.Context, ns, key string, opts ...CallOption) (*DeleteResult, error) {
	cfg := configOf(opts)
	req := &cachecarv1.DeleteRequest{Namespace: ns, Key: key, IfVersion: cfg.ifVersion}
	var resp *cachecarv1.DeleteResponse
	n, retried, err := c.run(ctx, kindWrite, cfg, func(ctx context.Context) (err error) {
		resp, err = c.stub.Delete(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &DeleteResult{Found: resp.GetFound(), Version: resp.GetVersion(), Attempts: n, RetriedOutcomeUnknown: retried}, nil
}

func (c *Client) invalidate(ctx context.Context, req *cachecarv1.InvalidateRequest, cfg *callConfig) (*InvalidateResult, error) {
	req.Broadcast = cfg.broadcast
	var resp *cachecarv1.InvalidateResponse
	// Dropping cached copies is idempotent: retried like a read.
	n, _, err := c.run(ctx, kindRead, cfg, func(ctx context.Context) (err error) {
		resp, err = c.stub.Invalidate(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &InvalidateResult{Dropped: resp.GetDropped(), Attempts: n}, nil
}

// Invalidate drops keys from this replica's cache (with Broadcast(), from
// every replica's); the store is not changed.
func (c *Client) Invalidate(ctx context.Context, ns string, keys []string, opts ...CallOption) (*InvalidateResult, error) {
	return c.invalidate(ctx, &cachecarv1.InvalidateRequest{Namespace: ns, Keys: keys}, configOf(opts))
}

// InvalidateAll drops a whole namespace from the cache.
func (c *Client) InvalidateAll(ctx context.Context, ns string, opts ...CallOption) (*InvalidateResult, error) {
	return c.invalidate(ctx, &cachecarv1.InvalidateRequest{Namespace: ns, All: true}, configOf(opts))
}

// NamespaceStats are one namespace's counters (cache.proto's NamespaceStats).
type NamespaceStats = cachecarv1.NamespaceStats

// Stats returns per-namespace counters (all namespaces when ns is empty).
func (c *Client) Stats(ctx context.Context, ns string, opts ...CallOption) ([]*NamespaceStats, error) {
	var resp *cachecarv1.StatsResponse
	_, _, err := c.run(ctx, kindRead, configOf(opts), func(ctx context.Context) (err error) {
		resp, err = c.stub.Stats(ctx, &cachecarv1.StatsRequest{Namespace: ns})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.GetNamespaces(), nil
}

// WatchOp says what happened to a key (cache.proto's WatchOp).
type WatchOp = cachecarv1.WatchOp

// WatchEvent is one change (the value is not included: read it with Get).
type WatchEvent struct {
	Key     string // empty for WATCH_OP_FLUSH
	Version uint64
	Op      WatchOp
	Local   bool
}

// WatchStream is an open Watch.
type WatchStream struct {
	stream cachecarv1.Cache_WatchClient
	cancel context.CancelFunc
}

// Watch opens a stream of the changes to namespace ns (keys starting with
// prefix) and returns once it is open: every change from then on reaches it.
// Opening is retried on UNAVAILABLE like a read, within WithTimeout (or the
// default timeout); the stream then runs until ctx ends or Close. It is not
// resumed: after it ends, call Watch again and re-read the keys you care
// about.
func (c *Client) Watch(ctx context.Context, ns, prefix string, opts ...CallOption) (*WatchStream, error) {
	cfg := configOf(opts)
	deadline := time.Now().Add(c.callTimeout(cfg))
	req := &cachecarv1.WatchRequest{Namespace: ns, KeyPrefix: prefix}
	for n := 1; ; n++ {
		sctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(time.Until(deadline), cancel)
		stream, err := c.stub.Watch(sctx, req)
		if err == nil {
			// cachecar sends the headers once the watcher is registered; a
			// stream that ends first (an error, trailers only) has none, and
			// then Header returns a nil map and Recv the status.
			if md, herr := stream.Header(); herr == nil && md != nil && timer.Stop() {
				return &WatchStream{stream: stream, cancel: cancel}, nil
			}
			_, err = stream.Recv()
		}
		timedOut := !timer.Stop()
		cancel()
		st := status.Convert(err)
		failed := &Error{Code: st.Code(), Message: st.Message(), Attempts: n}
		if timedOut && time.Now().After(deadline) {
			failed.Code, failed.Message = codes.DeadlineExceeded, "deadline passed before Watch opened"
		}
		if failed.Code != codes.Unavailable || n >= c.retry.MaxAttempts {
			return nil, failed
		}
		wait := c.retry.backoff(n+1, c.uniform())
		if !time.Now().Add(wait).Before(deadline) {
			return nil, failed
		}
		time.Sleep(wait)
	}
}

// Next blocks for the next change. When the stream has ended it returns an
// *Error: RESOURCE_EXHAUSTED (fell behind), UNAVAILABLE (the sidecar shut
// down), CANCELLED (after Close or the context's end).
func (w *WatchStream) Next() (*WatchEvent, error) {
	e, err := w.stream.Recv()
	if err != nil {
		st := status.Convert(err)
		return nil, &Error{Code: st.Code(), Message: st.Message(), Attempts: 1}
	}
	return &WatchEvent{Key: e.GetKey(), Version: e.GetVersion(), Op: e.GetOp(), Local: e.GetLocal()}, nil
}

// Close ends the stream; a blocked Next returns CANCELLED.
func (w *WatchStream) Close() { w.cancel() }

// WaitServing polls the standard gRPC health service until cachecar answers
// SERVING (its readiness: store reachable, sync positioned), for at most
// `wait`. A sidecar that is still starting is not an error.
func (c *Client) WaitServing(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	health := healthpb.NewHealthClient(c.cc)
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
			last = err // the last error from before the deadline says more
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not SERVING after %s: %w", wait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
