// Command conformance is the Go runner of clients/conformance/cases.json: it
// interprets every case's steps with the cachecar Go client and prints
// "ok - NAME" / "FAIL - NAME: ..." lines and an "N passed, N failed" summary
// (clients/conformance/README.md is the spec). clients/conformance/run.sh
// starts it with the environment it reads.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	cachecar "github.com/cachecar/cachecar/clients/go"
)

type obj = map[string]interface{}

type failure struct{ what string }

func fail(format string, args ...interface{}) { panic(failure{fmt.Sprintf(format, args...)}) }

// answer is one call's outcome in the spec's field names.
type answer struct {
	err      *cachecar.Error
	fields   obj
	entries  []obj
	attempts int
}

type asyncCall struct{ done chan answer }

type caseRun struct {
	client  *cachecar.Client
	prefix  string
	control []string
	vars    map[string]uint64
	watches map[string]*cachecar.WatchStream
	asyncs  map[string]*asyncCall
}

func (r *caseRun) close() {
	for _, w := range r.watches {
		w.Close()
	}
	for _, a := range r.asyncs {
		<-a.done
	}
}

func str(o obj, k string) string {
	s, _ := o[k].(string)
	return s
}

func has(o obj, k string) bool { _, ok := o[k]; return ok }

func num(v interface{}) int64 {
	n, err := v.(json.Number).Int64()
	if err != nil {
		fail("not a number: %v", v)
	}
	return n
}

func repeat(o obj) []byte {
	return []byte(strings.Repeat(str(o, "repeat"), int(num(o["count"]))))
}

func (r *caseRun) key(spec interface{}) string {
	switch s := spec.(type) {
	case string:
		return r.prefix + s
	case obj:
		if raw, ok := s["raw"]; ok {
			return raw.(string)
		}
		return string(repeat(s))
	}
	fail("bad key %v", spec)
	return ""
}

func (r *caseRun) keys(spec interface{}) []string {
	out := []string{}
	switch s := spec.(type) {
	case []interface{}:
		for _, k := range s {
			out = append(out, r.key(k))
		}
	case obj:
		for i := 0; i < int(num(s["count"])); i++ {
			out = append(out, r.prefix+str(s, "prefix")+strconv.Itoa(i))
		}
	}
	return out
}

func bytesOf(spec interface{}) []byte {
	switch s := spec.(type) {
	case string:
		return []byte(s)
	case obj:
		if h, ok := s["hex"]; ok {
			b, err := hex.DecodeString(h.(string))
			if err != nil {
				fail("bad hex %v", h)
			}
			return b
		}
		return repeat(s)
	}
	fail("bad value %v", spec)
	return nil
}

func (r *caseRun) variable(name string) uint64 {
	v, ok := r.vars[name]
	if !ok {
		fail("unknown variable $%s", name)
	}
	return v
}

func (r *caseRun) interpolate(text string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		j := strings.Index(text[i:], "}") + i
		b.WriteString(text[:i])
		name := text[i+2 : j]
		if strings.HasPrefix(name, "key:") {
			b.WriteString(r.prefix + name[4:])
		} else {
			b.WriteString(strconv.FormatUint(r.variable(name), 10))
		}
		text = text[j+1:]
	}
}

func (r *caseRun) number(v interface{}) uint64 {
	if s, ok := v.(string); ok {
		if strings.HasPrefix(s, "$") {
			return r.variable(s[1:])
		}
		n, _ := strconv.ParseUint(s, 10, 64)
		return n
	}
	return uint64(num(v))
}

func timeout(step obj) time.Duration {
	if has(step, "timeout_us") {
		return time.Duration(num(step["timeout_us"])) * time.Microsecond
	}
	if has(step, "timeout_ms") {
		return time.Duration(num(step["timeout_ms"])) * time.Millisecond
	}
	return 10 * time.Second
}

func boolOf(step obj, k string) bool { b, _ := step[k].(bool); return b }

func failed(err error) answer {
	e, ok := err.(*cachecar.Error)
	if !ok {
		e = &cachecar.Error{Code: codes.Unknown, Message: err.Error(), Attempts: 1}
	}
	return answer{err: e, attempts: e.Attempts}
}

func (r *caseRun) call(op string, step obj) answer {
	ctx := context.Background()
	opts := []cachecar.CallOption{cachecar.WithTimeout(timeout(step))}
	if str(step, "consistency") == "STRONG" {
		opts = append(opts, cachecar.Strong())
	}
	if has(step, "if_version") {
		opts = append(opts, cachecar.IfVersion(r.number(step["if_version"])))
	}
	if boolOf(step, "if_absent") {
		opts = append(opts, cachecar.IfAbsent())
	}
	if has(step, "ttl_ms") {
		opts = append(opts, cachecar.TTL(time.Duration(num(step["ttl_ms"]))*time.Millisecond))
	}
	if boolOf(step, "retry_outcome_unknown") {
		opts = append(opts, cachecar.RetryOutcomeUnknown())
	}
	if boolOf(step, "broadcast") {
		opts = append(opts, cachecar.Broadcast())
	}
	ns := str(step, "namespace")
	switch op {
	case "get":
		v, err := r.client.Get(ctx, ns, r.key(step["key"]), opts...)
		if err != nil {
			return failed(err)
		}
		return answer{attempts: v.Attempts, fields: obj{"found": v.Found, "value": v.Value, "version": v.Version,
			"source": v.Source.String(), "local": v.Local.String()}}
	case "batch_get":
		v, err := r.client.BatchGet(ctx, ns, r.keys(step["keys"]), opts...)
		if err != nil {
			return failed(err)
		}
		a := answer{attempts: v.Attempts}
		for _, e := range v.Entries {
			a.entries = append(a.entries, obj{"key": e.Key, "found": e.Found, "value": e.Value, "version": e.Version, "source": e.Source.String()})
		}
		return a
	case "put":
		v, err := r.client.Put(ctx, ns, r.key(step["key"]), bytesOf(step["value"]), opts...)
		if err != nil {
			return failed(err)
		}
		return answer{attempts: v.Attempts, fields: obj{"version": v.Version, "retried_outcome_unknown": v.RetriedOutcomeUnknown}}
	case "delete":
		v, err := r.client.Delete(ctx, ns, r.key(step["key"]), opts...)
		if err != nil {
			return failed(err)
		}
		return answer{attempts: v.Attempts, fields: obj{"found": v.Found, "version": v.Version, "retried_outcome_unknown": v.RetriedOutcomeUnknown}}
	case "invalidate":
		var v *cachecar.InvalidateResult
		var err error
		if boolOf(step, "all") {
			v, err = r.client.InvalidateAll(ctx, ns, opts...)
		} else {
			v, err = r.client.Invalidate(ctx, ns, r.keys(step["keys"]), opts...)
		}
		if err != nil {
			return failed(err)
		}
		return answer{attempts: v.Attempts, fields: obj{"dropped": v.Dropped}}
	}
	fail("unknown op %s", op)
	return answer{}
}

func (r *caseRun) checkError(want obj, got *cachecar.Error) {
	if code := str(want, "code"); code != cachecar.CodeName(got.Code) {
		fail("wanted %s, got %v", code, got)
	}
	if parts, ok := want["message_contains"].([]interface{}); ok {
		for _, p := range parts {
			if s := r.interpolate(p.(string)); !strings.Contains(got.Message, s) {
				fail("message lacks %q: %v", s, got)
			}
		}
	}
	if u, ok := want["outcome_unknown"].(bool); ok && u != got.OutcomeUnknown {
		fail("wanted outcome_unknown=%t, got %v", u, got)
	}
}

func (r *caseRun) compareNumber(name string, want interface{}, got uint64) {
	if _, ok := want.(json.Number); ok {
		if w := uint64(num(want)); w != got {
			fail("%s=%d, wanted %d", name, got, w)
		}
		return
	}
	w := want.(string)
	op, rest := "", w
	for _, o := range []string{">=", "<=", ">", "<"} {
		if strings.HasPrefix(w, o) {
			op, rest = o, w[len(o):]
			break
		}
	}
	x := r.number(rest)
	ok := map[string]bool{">=": got >= x, "<=": got <= x, ">": got > x, "<": got < x, "": got == x}[op]
	if !ok {
		fail("%s=%d, wanted %s%d", name, got, op, x)
	}
}

func printable(b []byte) string {
	if len(b) > 60 {
		return fmt.Sprintf("%q...(%d bytes)", b[:60], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func (r *caseRun) compareFields(where string, want obj, got obj) {
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			fail("%sno field %s in the answer", where, name)
		}
		switch name {
		case "version", "dropped":
			r.compareNumber(where+name, w, g.(uint64))
		case "value":
			if wb := bytesOf(w); string(wb) != string(g.([]byte)) {
				fail("%svalue %s, wanted %s", where, printable(g.([]byte)), printable(wb))
			}
		case "key":
			if k := r.key(w); k != g.(string) {
				fail("%skey %s, wanted %s", where, g, k)
			}
		default:
			if fmt.Sprint(w) != fmt.Sprint(g) {
				fail("%s%s=%v, wanted %v", where, name, g, w)
			}
		}
	}
}

func (r *caseRun) check(step obj, a answer) {
	expect, _ := step["expect"].(obj)
	if want, ok := expect["error"].(obj); ok {
		if a.err == nil {
			fail("succeeded; wanted %s", str(want, "code"))
		}
		r.checkError(want, a.err)
	} else if a.err != nil {
		fail("failed: %v", a.err)
	}
	if has(expect, "attempts") {
		r.compareNumber("attempts", expect["attempts"], uint64(a.attempts))
	}
	plain := obj{}
	for k, v := range expect {
		if k != "error" && k != "attempts" && k != "entries" {
			plain[k] = v
		}
	}
	r.compareFields("", plain, a.fields)
	if want, ok := expect["entries"].([]interface{}); ok {
		if len(want) != len(a.entries) {
			fail("%d entries, wanted %d", len(a.entries), len(want))
		}
		for i, w := range want {
			r.compareFields(fmt.Sprintf("entries[%d].", i), w.(obj), a.entries[i])
		}
	}
	if save, ok := step["save"].(obj); ok {
		for v, f := range save {
			n, ok := a.fields[f.(string)].(uint64)
			if !ok {
				fail("cannot save %v", f)
			}
			r.vars[v] = n
		}
	}
}

func (r *caseRun) runControl(step obj) {
	args := append([]string{}, r.control[1:]...)
	args = append(args, str(step, "action"))
	if list, ok := step["args"].([]interface{}); ok {
		for _, a := range list {
			args = append(args, r.interpolate(a.(string)))
		}
	}
	cmd := exec.Command(r.control[0], args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fail("control %s: %v", str(step, "action"), err)
	}
}

func (r *caseRun) watchNext(step obj) {
	w, ok := r.watches[str(step, "id")]
	if !ok {
		fail("no open watch %s", str(step, "id"))
	}
	// Next blocks: a timer closes the stream if the step runs out of time.
	timer := time.AfterFunc(timeout(step), w.Close)
	defer timer.Stop()
	expect := step["expect"].(obj)
	if want, ok := expect["error"].(obj); ok {
		for {
			if _, err := w.Next(); err != nil {
				r.checkError(want, err.(*cachecar.Error))
				return
			}
		}
	}
	seen := map[string]bool{}
	for _, want := range expect["events"].([]interface{}) {
		for {
			e, err := w.Next()
			if err != nil {
				fail("stream ended: %v", err)
			}
			id := fmt.Sprintf("%s\x00%d", e.Key, e.Version)
			if e.Version != 0 && seen[id] {
				continue // a duplicate
			}
			seen[id] = true
			r.compareFields("event ", want.(obj), obj{"key": e.Key, "op": e.Op.String(), "version": e.Version, "local": e.Local})
			break
		}
	}
}

func (r *caseRun) step(step obj) {
	op := str(step, "op")
	switch op {
	case "control":
		r.runControl(step)
	case "watch_open":
		prefix := r.prefix
		if has(step, "prefix") {
			prefix = r.key(step["prefix"])
		}
		w, err := r.client.Watch(context.Background(), str(step, "namespace"), prefix, cachecar.WithTimeout(timeout(step)))
		a := answer{attempts: 1}
		if err != nil {
			a = failed(err)
		}
		r.check(step, a)
		if err == nil {
			r.watches[str(step, "id")] = w
		}
	case "watch_next":
		r.watchNext(step)
	case "watch_close":
		if w, ok := r.watches[str(step, "id")]; ok {
			w.Close()
			delete(r.watches, str(step, "id"))
		} else {
			fail("no open watch %s", str(step, "id"))
		}
	case "await":
		a, ok := r.asyncs[str(step, "id")]
		if !ok {
			fail("no async call %s", str(step, "id"))
		}
		delete(r.asyncs, str(step, "id"))
		r.check(step, <-a.done)
	default:
		if id, ok := step["async"].(string); ok {
			a := &asyncCall{done: make(chan answer, 1)}
			r.asyncs[id] = a
			go func() { a.done <- r.call(op, step) }()
			return
		}
		until := time.Now()
		if has(step, "eventually_ms") {
			until = until.Add(time.Duration(num(step["eventually_ms"])) * time.Millisecond)
		}
		for {
			a := r.call(op, step)
			if ok := r.tryCheck(step, a); ok || !time.Now().Before(until) {
				if !ok {
					r.check(step, a)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// tryCheck is check that reports a mismatch instead of failing the case.
func (r *caseRun) tryCheck(step obj, a answer) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if _, isFailure := p.(failure); !isFailure {
				panic(p)
			}
			ok = false
		}
	}()
	r.check(step, a)
	return true
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "conformance: %s is not set (run me through clients/conformance/run.sh)\n", name)
		os.Exit(2)
	}
	return v
}

func main() {
	addr, casesPath, store, prefix := env("CONFORMANCE_ADDR"), env("CONFORMANCE_CASES"), env("CONFORMANCE_STORE"), env("CONFORMANCE_PREFIX")
	control := strings.Fields(env("CONFORMANCE_CONTROL"))
	only := os.Getenv("CONFORMANCE_ONLY")
	f, err := os.Open(casesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	dec := json.NewDecoder(f)
	dec.UseNumber()
	var doc obj
	if err := dec.Decode(&doc); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: cannot parse", casesPath, err)
		os.Exit(2)
	}
	client, err := cachecar.New(cachecar.Options{Target: addr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	defer client.Close()
	// Cases that need the local read path use a client that reads the
	// published cache; the others one that does not (their sources are
	// gRPC's).
	var localClient *cachecar.Client
	if path := os.Getenv("CONFORMANCE_LOCAL_PATH"); path != "" {
		if localClient, err = cachecar.New(cachecar.Options{Target: addr, LocalReadPath: path}); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			os.Exit(2)
		}
		defer localClient.Close()
	}
	passed, failedN, skipped := 0, 0, 0
	for _, c := range doc["cases"].([]interface{}) {
		kase := c.(obj)
		name := str(kase, "name")
		if only != "" && !strings.Contains(","+only+",", ","+name+",") {
			continue
		}
		if stores, ok := kase["stores"].([]interface{}); ok && !strings.Contains(fmt.Sprint(stores), store) {
			fmt.Printf("skip - %s (not for the %s store)\n", name, store)
			skipped++
			continue
		}
		c := client
		if requires, ok := kase["requires"].([]interface{}); ok && strings.Contains(fmt.Sprint(requires), "local") {
			if localClient == nil {
				fmt.Printf("skip - %s (this cachecar publishes no cache: no --local-read-path)\n", name)
				skipped++
				continue
			}
			c = localClient
		}
		run := &caseRun{client: c, prefix: prefix + name + ":", control: control, vars: map[string]uint64{},
			watches: map[string]*cachecar.WatchStream{}, asyncs: map[string]*asyncCall{}}
		if where, what := runCase(run, kase); what == "" {
			fmt.Printf("ok - %s\n", name)
			passed++
		} else {
			fmt.Printf("FAIL - %s: %s: %s\n", name, where, what)
			failedN++
			// Undo what the case left (a lock, a stopped sidecar or broker)
			// before its open calls are waited for.
			reset := exec.Command(control[0], append(append([]string{}, control[1:]...), "reset")...)
			reset.Stdout, reset.Stderr = os.Stderr, os.Stderr
			if err := reset.Run(); err != nil {
				fmt.Println("# control reset failed:", err)
			}
		}
		run.close()
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failedN, skipped)
	if failedN > 0 {
		os.Exit(1)
	}
}

// runCase runs the steps; on a failure it says which step and what.
func runCase(run *caseRun, kase obj) (where, what string) {
	i, op := 0, ""
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(failure)
			if !ok {
				panic(p)
			}
			where, what = fmt.Sprintf("step %d (%s)", i, op), f.what
		}
	}()
	for _, s := range kase["steps"].([]interface{}) {
		i++
		op = str(s.(obj), "op")
		run.step(s.(obj))
	}
	return "", ""
}
