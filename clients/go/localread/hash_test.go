package localread

import "testing"

// The test vectors of docs/LOCAL_READS.md.
func TestHashMatchesTheDocsVectors(t *testing.T) {
	for _, v := range []struct {
		key      string
		hash     uint64
		shard16  uint32
		home1024 uint64
	}{
		{"", 0x82d6de9c0781ef39, 8, 668},
		{"a", 0x9028242c0d27fbc1, 9, 44},
		{"abc", 0x0b8bd0fa6f36dd9c, 0, 250},
		{"abcd", 0x8405b03db385ff4e, 8, 61},
		{"hello world", 0x00874a3ff97baffb, 0, 575},
		{"key:000000000001", 0x2f5a5150dd92cd2a, 2, 336},
		{"0123456789abcdef", 0x04c445e3b36f8789, 0, 483},
		{"0123456789abcdefg", 0xf64f3195598d9d6a, 15, 405},
		{"a key that is longer than thirty-two bytes in total", 0x69d2e477bb498d00, 6, 119},
	} {
		h := Hash([]byte(v.key))
		if h != v.hash || shardOf(h, 16) != v.shard16 || (h>>32)&1023 != v.home1024 {
			t.Errorf("Hash(%q) = %#x (shard %d, home slot of 1024: %d), want %#x (%d, %d)", v.key, h, shardOf(h, 16), (h>>32)&1023,
				v.hash, v.shard16, v.home1024)
		}
	}
}
