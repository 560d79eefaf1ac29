package localread

import (
	"encoding/binary"
	"sync/atomic"
	"syscall"
)

// Hit reports (docs/LOCAL_READS.md "Hit reports"): hits served from the
// mapping never pass through cachecar, so the reader counts them per key (up
// to 3) in a small table and sends them, every 10 ms of activity and never
// waiting, over a SOCK_SEQPACKET socket at the file's path + ".hits", so
// S3-FIFO sees them as it sees gRPC hits. Racing goroutines may mix a slot's
// words up: that only skews this client's own counts, as the doc allows.

const (
	hitsMagic      = 0x53544948 // "HITS"
	hitsVersion    = 1
	hitsMaxMessage = 4096
	hitSlots       = 4096
	reportInterval = 10_000_000    // ns
	reconnectNs    = 1_000_000_000 // least time between connection attempts
)

type hitSlot struct {
	hash atomic.Uint64
	ns   atomic.Uint32
	hits atomic.Uint32
}

type hitReporter struct {
	path       string
	slots      [hitSlots]hitSlot
	nextReport atomic.Int64
	reporting  atomic.Bool
	fd         int   // guarded by reporting
	nextDial   int64 // guarded by reporting
	sent       atomic.Uint64
	dropped    atomic.Uint64
}

func newHitReporter(path string) *hitReporter { return &hitReporter{path: path + ".hits", fd: -1} }

func (h *hitReporter) record(hash uint64, ns uint32, now int64, instanceID uint64) {
	s := &h.slots[hash%hitSlots]
	if s.hash.Load() == hash && s.ns.Load() == ns {
		if n := s.hits.Load(); n < 3 {
			s.hits.Store(n + 1)
		}
	} else {
		s.hash.Store(hash)
		s.ns.Store(ns)
		s.hits.Store(1)
	}
	if now >= h.nextReport.Load() && h.reporting.CompareAndSwap(false, true) {
		h.nextReport.Store(now + reportInterval)
		h.send(now, instanceID)
		h.reporting.Store(false)
	}
}

// flush sends what was collected now (waits for a report in progress).
func (h *hitReporter) flush(now int64, instanceID uint64) {
	for !h.reporting.CompareAndSwap(false, true) {
	}
	h.send(now, instanceID)
	h.reporting.Store(false)
}

func (h *hitReporter) close() {
	for !h.reporting.CompareAndSwap(false, true) {
	}
	if h.fd >= 0 {
		_ = syscall.Close(h.fd)
		h.fd = -1
	}
	h.reporting.Store(false)
}

func (h *hitReporter) connect(now int64) bool {
	if h.fd >= 0 {
		return true
	}
	if now < h.nextDial {
		return false
	}
	h.nextDial = now + reconnectNs
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: h.path}); err != nil && err != syscall.EINPROGRESS {
		_ = syscall.Close(fd)
		return false
	}
	h.fd = fd
	return true
}

func (h *hitReporter) send(now int64, instanceID uint64) {
	connected := h.connect(now)
	var msg [hitsMaxMessage]byte
	count := 0
	batch := func() {
		if count == 0 {
			return
		}
		binary.LittleEndian.PutUint32(msg[0:], hitsMagic)
		binary.LittleEndian.PutUint16(msg[4:], hitsVersion)
		binary.LittleEndian.PutUint16(msg[6:], uint16(count))
		binary.LittleEndian.PutUint64(msg[8:], instanceID)
		n := 16 + 16*count
		count = 0
		if !connected || h.fd < 0 {
			h.dropped.Add(1)
			return
		}
		if err := syscall.Sendto(h.fd, msg[:n], syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, nil); err != nil {
			h.dropped.Add(1)
			if err != syscall.EAGAIN { // gone (cachecar restarted): reconnect later
				_ = syscall.Close(h.fd)
				h.fd = -1
			}
			return
		}
		h.sent.Add(1)
	}
	for i := range h.slots {
		s := &h.slots[i]
		hits := s.hits.Swap(0)
		if hits == 0 {
			continue
		}
		rec := msg[16+16*count:]
		binary.LittleEndian.PutUint64(rec[0:], s.hash.Load())
		binary.LittleEndian.PutUint32(rec[8:], s.ns.Load())
		binary.LittleEndian.PutUint32(rec[12:], hits)
		if count++; count == 255 {
			batch()
		}
	}
	batch()
}
