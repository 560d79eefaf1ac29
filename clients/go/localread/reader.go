// Package localread reads cachecar's published cache (local_read_path): a
// hit is answered from the shared-memory file itself, with no syscall and
// no gRPC call, exactly as a gRPC Get on that replica would answer it;
// anything else is a fallback the caller sends over gRPC. Written from
// docs/LOCAL_READS.md, layout version 1 (that page is the spec; the comments
// here name its steps).
//
// A Reader is safe for concurrent use. It maps the file read-only, copies
// what it returns (never a pointer into the mapping), bounds-checks every
// offset it computes, and never unmaps a mapping a Get is still reading.
package localread

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Result says how a Get was answered; all but Hit and Absent are fallbacks.
// The numbers are the C ABI's (docs/LOCAL_READS.md).
type Result int

const (
	NotTried         Result = -1 // no local reader (Options.LocalReadPath unset)
	Hit              Result = 0
	Absent           Result = 1 // the key does not exist, at the version returned
	Miss             Result = 2
	Expired          Result = 3
	Stale            Result = 4 // the replica cannot vouch for its cache (bypass)
	NotServing       Result = 5 // no file, or starting, retired or being replaced
	Incompatible     Result = 6 // another magic or layout version
	Corrupt          Result = 7
	Busy             Result = 8
	Strong           Result = 9
	UnknownNamespace Result = 10
	BadKey           Result = 11
)

var resultNames = [...]string{"HIT", "ABSENT", "MISS", "EXPIRED", "STALE", "NOT_SERVING", "INCOMPATIBLE",
	"CORRUPT", "BUSY", "STRONG", "UNKNOWN_NAMESPACE", "BAD_KEY"}

func (r Result) String() string {
	if r == NotTried {
		return "NOT_TRIED"
	}
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "UNKNOWN"
}

// Fallback reports whether the caller must ask cachecar over gRPC.
func (r Result) Fallback() bool { return r != Hit && r != Absent }

const (
	magic          = 0x7261636568636163
	layoutVersion  = 1
	headerBytes    = 4096
	stateServing   = 2
	stateRetired   = 3
	nsEntryBytes   = 128
	shardBytes     = 64
	entryHeader    = 48
	maxAttempts    = 24   // step 8
	maxProbe       = 1024 // step 8.4: the bound is for damaged files
	reopenInterval = 100 * time.Millisecond
)

// mapping is one mapped file; refs counts the Gets reading it, and it is
// unmapped once it is replaced and the last of them is done.
type mapping struct {
	data       []byte
	instanceID uint64
	maxKey     uint32
	namespaces map[string]uint32 // name -> index
	nsOffset   uint64
	refs       atomic.Int64 // < 0: unmapped (or being unmapped)
	closing    atomic.Bool
	gone       atomic.Bool // a Get saw it retired (the first one reopens at once)
}

const unmapped = -(1 << 40)

func (m *mapping) acquire() bool {
	if m.refs.Add(1) < 0 {
		return false
	}
	if m.closing.Load() {
		m.release()
		return false
	}
	return true
}

func (m *mapping) release() {
	if m.refs.Add(-1) == 0 && m.closing.Load() {
		m.tryUnmap()
	}
}

func (m *mapping) tryUnmap() {
	if m.refs.CompareAndSwap(0, unmapped) {
		_ = syscall.Munmap(m.data)
	}
}

func (m *mapping) retire() {
	m.closing.Store(true)
	m.tryUnmap()
}

// Reader answers Gets from the file at a path, reopening it when cachecar
// replaces it.
type Reader struct {
	path     string
	mu       sync.Mutex // serializes (re)opening
	cur      atomic.Pointer[mapping]
	lastOpen atomic.Int64 // unix ns of the last open attempt
	openErr  atomic.Int64 // the Result of the last failed open
	closed   atomic.Bool
	hits     *hitReporter // nil: no hit reports
}

// Options of OpenWith.
type Options struct {
	// NoHitReports: do not report hits served locally to cachecar's
	// eviction (hits.go). Without reports, keys read only locally look
	// unused to S3-FIFO.
	NoHitReports bool
}

// Open makes a Reader of the file at path. It never fails: while the file
// is missing or unusable, Gets return NotServing (or Incompatible, Corrupt)
// and the file is tried again at most every 100 ms.
// Hits it serves are reported to cachecar (see OpenWith).
func Open(path string) *Reader { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, o Options) *Reader {
	r := &Reader{path: path}
	if !o.NoHitReports {
		r.hits = newHitReporter(path)
	}
	r.reopen(nil)
	return r
}

// FlushHits sends the hits collected so far to cachecar now.
func (r *Reader) FlushHits() {
	if m := r.cur.Load(); r.hits != nil && m != nil {
		r.hits.flush(time.Now().UnixNano(), m.instanceID)
	}
}

// Close unmaps the file (once no Get is reading it).
func (r *Reader) Close() {
	r.closed.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.cur.Swap(nil); m != nil {
		m.retire()
	}
	if r.hits != nil {
		r.hits.close()
	}
}

func le64(b []byte, off uint64) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func le32(b []byte, off uint64) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

// atomic64 loads the u64 at off (8-aligned, inside data) atomically.
func atomic64(data []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&data[off])))
}

// inside reports whether [off, off+n) lies inside size, without overflow.
func inside(off, n, size uint64) bool { return off <= size && n <= size-off }

func isPow2(x uint64) bool { return x != 0 && x&(x-1) == 0 }

// openFile maps path and runs the open checks ("Open checks").
func openFile(path string) (*mapping, Result) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, NotServing
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Size < headerBytes {
		return nil, NotServing
	}
	data, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, NotServing
	}
	m, res := check(data)
	if m == nil {
		_ = syscall.Munmap(data)
	}
	return m, res
}

func check(data []byte) (*mapping, Result) {
	size := uint64(len(data))
	if le64(data, 0) != magic || le32(data, 8) != layoutVersion {
		return nil, Incompatible
	}
	fileBytes := le64(data, 16)
	if le32(data, 12) != headerBytes || fileBytes > size || fileBytes < headerBytes {
		return nil, Corrupt
	}
	nsOff, nsCount := le64(data, 48), uint64(le32(data, 56))
	if nsCount < 1 || nsCount > 1024 || nsOff%8 != 0 || !inside(nsOff, nsCount*nsEntryBytes, fileBytes) {
		return nil, Corrupt
	}
	m := &mapping{data: data[:fileBytes], instanceID: le64(data, 24), maxKey: le32(data, 60),
		namespaces: map[string]uint32{}, nsOffset: nsOff}
	for i := uint64(0); i < nsCount; i++ {
		e := nsOff + i*nsEntryBytes
		nameLen, shards := uint64(le32(data, e+64)), uint64(le32(data, e+68))
		shardsOff := le64(data, e+88)
		if nameLen < 1 || nameLen > 64 || !isPow2(shards) || shards > 1024 || shardsOff%8 != 0 ||
			!inside(shardsOff, shards*shardBytes, fileBytes) {
			return nil, Corrupt
		}
		for s := uint64(0); s < shards; s++ {
			sh := shardsOff + s*shardBytes
			idxOff, maxSlots := le64(data, sh+8), uint64(le32(data, sh+20))
			arenaOff, arenaBytes := le64(data, sh+24), le64(data, sh+32)
			if !isPow2(maxSlots) || idxOff%8 != 0 || !inside(idxOff, maxSlots*8, fileBytes) ||
				arenaOff%8 != 0 || arenaBytes%8 != 0 || !inside(arenaOff, arenaBytes, fileBytes) {
				return nil, Corrupt
			}
		}
		m.namespaces[string(data[e:e+nameLen])] = uint32(i)
	}
	return m, Hit
}

// reopen replaces the mapping (if `seen` is still the current one), at most
// every reopenInterval unless `now` (the first Get to see `seen` retired:
// cachecar may have put the new file in place already).
func (r *Reader) reopen(seen *mapping, nowPlease ...bool) {
	now := time.Now().UnixNano()
	if last := r.lastOpen.Load(); last != 0 && now-last < int64(reopenInterval) && !(len(nowPlease) > 0 && nowPlease[0]) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() || r.cur.Load() != seen {
		return
	}
	r.lastOpen.Store(now)
	m, res := openFile(r.path)
	if m == nil {
		r.openErr.Store(int64(res))
		return
	}
	if seen != nil && m.instanceID == seen.instanceID {
		_ = syscall.Munmap(m.data) // the same file: nothing new yet
		return
	}
	if old := r.cur.Swap(m); old != nil {
		old.retire()
	}
}

// Get answers (namespace, key) from the file: Hit with the value and
// version, Absent with the delete's version, or a fallback. An empty
// namespace means "default". strong=true always falls back (only the store
// answers CONSISTENCY_STRONG).
func (r *Reader) Get(namespace string, key []byte, strong bool) (Result, []byte, uint64) {
	if strong { // step 1
		return Strong, nil, 0
	}
	for tries := 0; tries < 3; tries++ {
		m := r.cur.Load()
		if m == nil { // step 2
			r.reopen(nil)
			if m = r.cur.Load(); m == nil {
				if res := Result(r.openErr.Load()); res == Incompatible || res == Corrupt {
					return res, nil, 0
				}
				return NotServing, nil, 0
			}
		}
		if !m.acquire() {
			continue // replaced under us: take the new one
		}
		res, value, version, retired := m.get(namespace, key, r.hits)
		m.release()
		if retired {
			// Step 3: a new file may be at the path; if it is there and
			// serving, answer from it (as the C++ reader does).
			r.reopen(m, !m.gone.Swap(true))
			if next := r.cur.Load(); next != nil && next != m && atomic64(next.data, 32) == stateServing {
				continue
			}
		}
		return res, value, version
	}
	return NotServing, nil, 0
}

func (m *mapping) get(namespace string, key []byte, hits *hitReporter) (res Result, value []byte, version uint64, retired bool) {
	d := m.data
	if st := atomic64(d, 32); st != stateServing { // step 3
		return NotServing, nil, 0, st == stateRetired
	}
	now := time.Now().UnixNano() // step 4
	if trusted := int64(atomic64(d, 40)); now > trusted {
		return Stale, nil, 0, false
	}
	if namespace == "" { // step 5
		namespace = "default"
	}
	ns, ok := m.namespaces[namespace]
	if !ok {
		return UnknownNamespace, nil, 0, false
	}
	if len(key) == 0 || uint64(len(key)) > uint64(m.maxKey) { // step 6
		return BadKey, nil, 0, false
	}
	hash := Hash(key) // step 7
	nsEntry := m.nsOffset + uint64(ns)*nsEntryBytes
	sh := le64(d, nsEntry+88) + uint64(shardOf(hash, le32(d, nsEntry+68)))*shardBytes
	idxOff, maxSlots := le64(d, sh+8), uint64(le32(d, sh+20))
	arenaOff, arenaBytes := le64(d, sh+24), le64(d, sh+32)
	tag := hash >> 32
	var hdr [entryHeader]byte
	for attempt := 0; attempt < maxAttempts; attempt++ { // step 8
		s1 := atomic64(d, sh)
		if s1&1 != 0 {
			// cachecar is changing the shard: wait a little longer each
			// time (about 5 us over all attempts, as the C++ reader does).
			for i := 0; i < 1<<(attempt/4); i++ {
				spinPause()
			}
			continue
		}
		epoch32 := uint32(atomic64(d, nsEntry+72))
		mask := uint64(atomic.LoadUint32((*uint32)(unsafe.Pointer(&d[sh+16]))))
		broken, found := false, false
		var entryEpoch uint32
		var expires int64
		var flags byte
		value = value[:0]
		if mask+1 > maxSlots {
			broken = true
		} else {
			pos := tag & mask // the home slot: the tag's low bits
			limit := mask + 1
			if limit > maxProbe {
				limit = maxProbe
			}
			for i := uint64(0); i < limit; i++ {
				slot := atomic64(d, idxOff+8*pos)
				if slot == 0 {
					break
				}
				if slot>>32 == tag {
					ref := 8 * (slot & 0xffffffff)
					if !inside(ref, entryHeader, arenaBytes) {
						broken = true
						break
					}
					e := arenaOff + ref
					copy(hdr[:], d[e:e+entryHeader])
					ks, vs := uint64(binary.LittleEndian.Uint32(hdr[16:])), uint64(binary.LittleEndian.Uint32(hdr[20:]))
					if !inside(ref+entryHeader, ks+vs, arenaBytes) {
						broken = true
						break
					}
					if ks == uint64(len(key)) && string(d[e+entryHeader:e+entryHeader+ks]) == string(key) {
						found = true
						version = binary.LittleEndian.Uint64(hdr[0:])
						expires = int64(binary.LittleEndian.Uint64(hdr[8:]))
						entryEpoch = binary.LittleEndian.Uint32(hdr[24:])
						flags = hdr[28]
						value = append(value, d[e+entryHeader+ks:e+entryHeader+ks+vs]...)
						break
					}
				}
				pos = (pos + 1) & mask
			}
		}
		// step 8.5: the atomic load orders the copies above before it.
		if s2 := atomic64(d, sh); s2 != s1 {
			continue
		}
		switch { // step 8.7
		case broken:
			return Corrupt, nil, 0, false
		case !found || entryEpoch != epoch32:
			return Miss, nil, 0, false
		case expires != 0 && now >= expires:
			return Expired, nil, 0, false
		}
		if hits != nil {
			hits.record(hash, ns, now, m.instanceID)
		}
		if flags&1 != 0 {
			return Absent, nil, version, false
		}
		return Hit, value, version, false
	}
	return Busy, nil, 0, false // step 9
}

//go:noinline
func spinPause() {}
