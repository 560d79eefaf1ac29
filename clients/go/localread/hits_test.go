package localread

import (
	"encoding/binary"
	"syscall"
	"testing"
)

// A hit served locally reaches cachecar's .hits socket as the doc's message:
// the header (magic, version, count, instance id) and one record per key.
func TestHitsAreReportedAsTheDocSays(t *testing.T) {
	f := newFakeFile(t)
	f.put(0, "k", []byte("value"), 7, 0, 0, false)
	f.put(1, "gone", nil, 9, 0, 0, true)
	f.flush()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: f.path + ".hits"}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 4); err != nil {
		t.Fatal(err)
	}
	tv := syscall.Timeval{Sec: 10} // a report that never comes fails, not hangs
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	r := Open(f.path)
	defer r.Close()
	for i := 0; i < 5; i++ { // counted up to 3
		if res, _, _ := r.Get("default", []byte("k"), false); res != Hit {
			t.Fatalf("Get k = %s", res)
		}
	}
	if res, _, _ := r.Get("other", []byte("gone"), false); res != Absent {
		t.Fatalf("Get gone = %s", res)
	}
	if res, _, _ := r.Get("default", []byte("never"), false); res != Miss { // not a hit
		t.Fatalf("Get never = %s", res)
	}
	r.FlushHits()
	conn, _, err := syscall.Accept(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(conn)
	if err := syscall.SetsockoptTimeval(conn, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	// The first Get sent a message already (a report is due at once), and a
	// slow machine may send more (every 10 ms): read until the records cover
	// every hit. A record says 1..3 hits.
	got := map[uint64][2]uint32{}
	buf := make([]byte, hitsMaxMessage+1)
	kh, goneh := Hash([]byte("k")), Hash([]byte("gone"))
	for got[kh][1] < 3 || got[goneh][1] < 1 {
		n, err := syscall.Read(conn, buf)
		if err != nil || n < 32 || (n-16)%16 != 0 {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		if binary.LittleEndian.Uint32(buf) != hitsMagic || binary.LittleEndian.Uint16(buf[4:]) != 1 ||
			int(binary.LittleEndian.Uint16(buf[6:])) != (n-16)/16 || binary.LittleEndian.Uint64(buf[8:]) != 42 {
			t.Fatalf("bad header % x", buf[:16])
		}
		for rec := buf[16:n]; len(rec) > 0; rec = rec[16:] {
			h := binary.LittleEndian.Uint64(rec)
			c := got[h]
			c[0] = binary.LittleEndian.Uint32(rec[8:])
			hits := binary.LittleEndian.Uint32(rec[12:])
			if hits < 1 || hits > 3 {
				t.Fatalf("a record with %d hits", hits)
			}
			c[1] += hits
			got[h] = c
		}
	}
	if c := got[kh]; c[0] != 0 || c[1] > 5 {
		t.Errorf("k: namespace %d, hits %d; want 0, at most 5 (5 Gets)", c[0], c[1])
	}
	if c := got[goneh]; c[0] != 1 || c[1] != 1 {
		t.Errorf("gone: namespace %d, hits %d; want 1, 1", c[0], c[1])
	}
	if _, ok := got[Hash([]byte("never"))]; ok {
		t.Errorf("a miss was reported as a hit")
	}
}
