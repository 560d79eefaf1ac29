package localread

import (
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fakeFile writes a layout-version-1 file the way docs/LOCAL_READS.md
// describes it (one namespace "default" and one "other", each with 4 shards
// of 64 slots and a 64 KiB arena), so the reader is tested against the doc.
// The real writer is cachecar's (tests on its branch use it).
type fakeFile struct {
	t    *testing.T
	path string
	data []byte
	next map[uint64]uint64 // shard offset -> next free arena ref
}

const (
	fShards   = 4
	fSlots    = 64
	fArena    = 64 << 10
	fNsOffset = 4096
)

func newFakeFile(t *testing.T) *fakeFile {
	names := []string{"default", "other"}
	shardTables := uint64(fNsOffset + len(names)*nsEntryBytes)
	perNs := uint64(fShards * shardBytes)
	payload := shardTables + uint64(len(names))*perNs
	size := payload + uint64(len(names)*fShards)*(fSlots*8+fArena)
	f := &fakeFile{t: t, path: filepath.Join(t.TempDir(), "cache"), data: make([]byte, size), next: map[uint64]uint64{}}
	d := f.data
	binary.LittleEndian.PutUint64(d[0:], magic)
	binary.LittleEndian.PutUint32(d[8:], layoutVersion)
	binary.LittleEndian.PutUint32(d[12:], headerBytes)
	binary.LittleEndian.PutUint64(d[16:], size)
	binary.LittleEndian.PutUint64(d[24:], 42)
	binary.LittleEndian.PutUint64(d[32:], stateServing)
	binary.LittleEndian.PutUint64(d[40:], math.MaxInt64)
	binary.LittleEndian.PutUint64(d[48:], fNsOffset)
	binary.LittleEndian.PutUint32(d[56:], uint32(len(names)))
	binary.LittleEndian.PutUint32(d[60:], 1024)
	next := payload
	for i, name := range names {
		e := uint64(fNsOffset + i*nsEntryBytes)
		copy(d[e:], name)
		binary.LittleEndian.PutUint32(d[e+64:], uint32(len(name)))
		binary.LittleEndian.PutUint32(d[e+68:], fShards)
		shards := shardTables + uint64(i)*perNs
		binary.LittleEndian.PutUint64(d[e+88:], shards)
		for s := uint64(0); s < fShards; s++ {
			sh := shards + s*shardBytes
			binary.LittleEndian.PutUint64(d[sh+8:], next)
			binary.LittleEndian.PutUint32(d[sh+16:], fSlots-1)
			binary.LittleEndian.PutUint32(d[sh+20:], fSlots)
			binary.LittleEndian.PutUint64(d[sh+24:], next+fSlots*8)
			binary.LittleEndian.PutUint64(d[sh+32:], fArena)
			next += fSlots*8 + fArena
			f.next[sh] = 1
		}
	}
	f.flush()
	return f
}

func (f *fakeFile) flush() {
	if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeFile) shardOf(ns int, key string) uint64 {
	e := uint64(fNsOffset + ns*nsEntryBytes)
	return binary.LittleEndian.Uint64(f.data[e+88:]) + uint64(shardOf(Hash([]byte(key)), fShards))*shardBytes
}

// put adds an entry (version, expiry, epoch, flags) for key in namespace ns.
func (f *fakeFile) put(ns int, key string, value []byte, version uint64, expires int64, epoch uint32, absent bool) {
	d := f.data
	sh := f.shardOf(ns, key)
	ref := f.next[sh]
	arena := binary.LittleEndian.Uint64(d[sh+24:])
	e := arena + 8*ref
	binary.LittleEndian.PutUint64(d[e:], version)
	binary.LittleEndian.PutUint64(d[e+8:], uint64(expires))
	binary.LittleEndian.PutUint32(d[e+16:], uint32(len(key)))
	binary.LittleEndian.PutUint32(d[e+20:], uint32(len(value)))
	binary.LittleEndian.PutUint32(d[e+24:], epoch)
	if absent {
		d[e+28] = 1
	}
	copy(d[e+entryHeader:], key)
	copy(d[e+entryHeader+uint64(len(key)):], value)
	f.next[sh] = ref + (entryHeader+uint64(len(key)+len(value))+7)/8
	h := Hash([]byte(key))
	idx := binary.LittleEndian.Uint64(d[sh+8:])
	for pos := (h >> 32) & (fSlots - 1); ; pos = (pos + 1) & (fSlots - 1) {
		if binary.LittleEndian.Uint64(d[idx+8*pos:]) == 0 {
			binary.LittleEndian.PutUint64(d[idx+8*pos:], (h>>32)<<32|ref)
			return
		}
	}
}

func TestAnswersAsTheDocSays(t *testing.T) {
	f := newFakeFile(t)
	now := time.Now().UnixNano()
	f.put(0, "k", []byte("value"), 7, 0, 0, false)
	f.put(0, "gone", nil, 9, 0, 0, true)
	f.put(0, "old", []byte("x"), 3, now-1, 0, false)
	f.put(0, "later", []byte("y"), 4, now+int64(time.Hour), 0, false)
	f.put(0, "flushed", []byte("z"), 5, 0, 1, false) // written in epoch 1; the namespace is in 0
	f.put(1, "k", []byte("other ns"), 8, 0, 0, false)
	f.flush()
	r := Open(f.path)
	defer r.Close()
	for _, c := range []struct {
		ns, key string
		strong  bool
		res     Result
		value   string
		version uint64
	}{
		{"", "k", false, Hit, "value", 7},
		{"default", "k", false, Hit, "value", 7},
		{"other", "k", false, Hit, "other ns", 8},
		{"", "k", true, Strong, "", 0},
		{"", "gone", false, Absent, "", 9},
		{"", "old", false, Expired, "", 0},
		{"", "later", false, Hit, "y", 4},
		{"", "flushed", false, Miss, "", 0},
		{"", "never", false, Miss, "", 0},
		{"nope", "k", false, UnknownNamespace, "", 0},
		{"", "", false, BadKey, "", 0},
	} {
		res, v, ver := r.Get(c.ns, []byte(c.key), c.strong)
		if res != c.res || string(v) != c.value || ver != c.version {
			t.Errorf("Get(%q, %q, strong=%t) = %s %q v%d, want %s %q v%d", c.ns, c.key, c.strong, res, v, ver, c.res, c.value, c.version)
		}
	}
}

func TestFreshnessStateAndRestart(t *testing.T) {
	f := newFakeFile(t)
	f.put(0, "k", []byte("v"), 1, 0, 0, false)
	binary.LittleEndian.PutUint64(f.data[40:], uint64(time.Now().Add(-time.Second).UnixNano()))
	f.flush()
	r := Open(f.path)
	defer r.Close()
	if res, _, _ := r.Get("", []byte("k"), false); res != Stale {
		t.Fatalf("past trusted_until: %s, want STALE", res)
	}
	// A new file renamed over the path, the old one retired (a restart).
	g := newFakeFile(t)
	g.put(0, "k", []byte("new process"), 2, 0, 0, false)
	binary.LittleEndian.PutUint64(g.data[24:], 43)
	binary.LittleEndian.PutUint64(g.data[32:], 1) // starting
	g.path = f.path + ".new"
	g.flush()
	old, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := os.Rename(g.path, f.path); err != nil {
		t.Fatal(err)
	}
	writeState(t, old, stateRetired)
	if res, _, _ := r.Get("", []byte("k"), false); res != NotServing {
		t.Fatalf("retired file: %s, want NOT_SERVING", res)
	}
	r.lastOpen.Store(0) // skip the 100 ms reopen throttle
	if res, _, _ := r.Get("", []byte("k"), false); res != NotServing {
		t.Fatalf("new file still starting: %s, want NOT_SERVING", res)
	}
	cur, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	writeState(t, cur, stateServing)
	if res, v, ver := r.Get("", []byte("k"), false); res != Hit || string(v) != "new process" || ver != 2 {
		t.Fatalf("after the restart: %s %q v%d, want HIT from the new file", res, v, ver)
	}
}

// writeState sets the state of the file fd is open on (as cachecar would).
func writeState(t *testing.T, fd *os.File, state uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], state)
	if _, err := fd.WriteAt(b[:], 32); err != nil {
		t.Fatal(err)
	}
}

func TestOpenChecks(t *testing.T) {
	r := Open(filepath.Join(t.TempDir(), "missing"))
	if res, _, _ := r.Get("", []byte("k"), false); res != NotServing {
		t.Errorf("no file: %s, want NOT_SERVING", res)
	}
	r.Close()
	f := newFakeFile(t)
	binary.LittleEndian.PutUint32(f.data[8:], 2)
	f.flush()
	r = Open(f.path)
	if res, _, _ := r.Get("", []byte("k"), false); res != Incompatible {
		t.Errorf("layout 2: %s, want INCOMPATIBLE", res)
	}
	r.Close()
	f = newFakeFile(t)
	f.flush()
	if err := os.Truncate(f.path, int64(len(f.data)-1)); err != nil {
		t.Fatal(err)
	}
	r = Open(f.path)
	if res, _, _ := r.Get("", []byte("k"), false); res != Corrupt {
		t.Errorf("truncated: %s, want CORRUPT", res)
	}
	r.Close()
}

// Random corruption of every part of a populated file: the reader answers
// something (a fallback, or what the bytes say) and never panics or hangs.
func TestCorruptFilesNeverCrash(t *testing.T) {
	base := newFakeFile(t)
	for i := 0; i < 40; i++ {
		base.put(i%2, "key"+string(rune('a'+i%26))+string(rune('a'+i/26)), []byte("some value"), uint64(i+1), 0, 0, i%7 == 0)
	}
	rng := rand.New(rand.NewSource(1))
	pristine := append([]byte(nil), base.data...)
	for round := 0; round < 300; round++ {
		copy(base.data, pristine)
		for n := 0; n < 1+rng.Intn(64); n++ {
			// Bias towards the headers, tables and index, where offsets live.
			var at int
			if rng.Intn(2) == 0 {
				at = rng.Intn(fNsOffset + 2*nsEntryBytes + 2*fShards*shardBytes + 64)
			} else {
				at = rng.Intn(len(base.data))
			}
			base.data[at] = byte(rng.Intn(256))
		}
		base.flush()
		r := Open(base.path)
		for i := 0; i < 40; i++ {
			r.Get([]string{"", "other"}[i%2], []byte("key"+string(rune('a'+i%26))+string(rune('a'+i/26))), false)
		}
		r.Close()
	}
}

// A writer changing a shard under its sequence lock while readers read: a
// reader returns the value of the version it reports, or falls back (BUSY),
// never a torn mix.
func TestTornReadsAreDetected(t *testing.T) {
	f := newFakeFile(t)
	const keys = 8
	val := func(version uint64) []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(version + uint64(i))
		}
		return b
	}
	for k := 0; k < keys; k++ {
		f.put(0, "k"+string(rune('0'+k)), val(1), 1, 0, 0, false)
	}
	f.flush()
	r := Open(f.path)
	defer r.Close()
	// The writer rewrites values in place through a writable mapping of the file.
	fd, err := os.OpenFile(f.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	w, err := mmapRW(fd, len(f.data))
	if err != nil {
		t.Fatal(err)
	}
	defer munmap(w)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := uint64(2); !stop.Load(); v++ {
			for k := 0; k < keys; k++ {
				key := "k" + string(rune('0'+k))
				sh := f.shardOf(0, key)
				seq := (*uint64)(unsafe.Pointer(&w[sh]))
				atomic.AddUint64(seq, 1) // odd: changing
				e := entryOf(w, sh, key)
				binary.LittleEndian.PutUint64(w[e:], v)
				copy(w[e+entryHeader+uint64(len(key)):], val(v))
				atomic.AddUint64(seq, 1) // even again
			}
		}
	}()
	deadline := time.Now().Add(500 * time.Millisecond)
	var reads, hits int
	for time.Now().Before(deadline) {
		for k := 0; k < keys; k++ {
			res, v, ver := r.Get("", []byte("k"+string(rune('0'+k))), false)
			reads++
			if res == Hit {
				hits++
				if string(v) != string(val(ver)) {
					stop.Store(true)
					t.Fatalf("torn read returned: version %d with a value of another version", ver)
				}
			} else if res != Busy {
				t.Fatalf("unexpected %s", res)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if hits == 0 {
		t.Fatalf("no hit in %d reads", reads)
	}
}

// entryOf finds key's entry offset in shard sh (the index does not change
// in TestTornReadsAreDetected).
func entryOf(d []byte, sh uint64, key string) uint64 {
	h := Hash([]byte(key))
	idx, arena := binary.LittleEndian.Uint64(d[sh+8:]), binary.LittleEndian.Uint64(d[sh+24:])
	for pos := (h >> 32) & (fSlots - 1); ; pos = (pos + 1) & (fSlots - 1) {
		slot := binary.LittleEndian.Uint64(d[idx+8*pos:])
		e := arena + 8*(slot&0xffffffff)
		if slot>>32 == h>>32 && string(d[e+entryHeader:e+entryHeader+uint64(len(key))]) == key {
			return e
		}
	}
}

// BenchmarkLocalHit: one hit of a 100-byte value from a file written as the
// doc says (not cachecar's own file: that comes with the local-read branch).
func BenchmarkLocalHit(b *testing.B) {
	f := newFakeFile(&testing.T{})
	defer os.RemoveAll(filepath.Dir(f.path))
	f.put(0, "user:42", make([]byte, 100), 7, 0, 0, false)
	f.flush()
	r := Open(f.path)
	defer r.Close()
	key := []byte("user:42")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, _, _ := r.Get("", key, false); res != Hit {
			b.Fatal(res)
		}
	}
}
