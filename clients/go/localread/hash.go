package localread

import (
	"encoding/binary"
	"math/bits"
)

// The key hash of docs/LOCAL_READS.md ("The key hash"): a wyhash-style mix.
// Hand-written because it must match cachecar's bit for bit; the doc's test
// vectors are in hash_test.go.

const (
	p0 = 0xa0761d6478bd642f
	p1 = 0xe7037ed1a0b428db
	p2 = 0x8ebc6af09c88c6e3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Hash is cachecar's key hash.
func Hash(key []byte) uint64 {
	n := uint64(len(key))
	seed := uint64(p0) ^ mix(n^p0, p1)
	p, rest := 0, len(key)
	for rest > 16 {
		seed = mix(binary.LittleEndian.Uint64(key[p:])^p1, binary.LittleEndian.Uint64(key[p+8:])^seed)
		p += 16
		rest -= 16
	}
	var a, b uint64
	switch {
	case rest >= 8:
		a = binary.LittleEndian.Uint64(key[p:])
		b = binary.LittleEndian.Uint64(key[p+rest-8:])
	case rest >= 4:
		a = uint64(binary.LittleEndian.Uint32(key[p:]))
		b = uint64(binary.LittleEndian.Uint32(key[p+rest-4:]))
	case rest > 0:
		a = uint64(key[p])<<16 | uint64(key[p+rest/2])<<8 | uint64(key[p+rest-1])
	}
	return mix(mix(a^p1, b^seed)^p2, n^p1)
}

// shardOf is the key's shard among count (a power of two).
func shardOf(hash uint64, count uint32) uint32 {
	hi, _ := bits.Mul64(hash, uint64(count))
	return uint32(hi)
}
