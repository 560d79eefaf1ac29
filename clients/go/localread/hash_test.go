package localread

import "testing"

// The test vectors of docs/LOCAL_READS.md.
func TestHashMatchesTheDocsVectors(t *testing.T) {
	for _, v := range []struct {
		key     string
		hash    uint64
		shard16 uint32
		low10   uint64
	}{
		{"", 0x82d6de9c0781ef39, 8, 825},
		{"a", 0x9028242c0d27fbc1, 9, 961},
		{"abc", 0x0b8bd0fa6f36dd9c, 0, 412},
		{"abcd", 0x8405b03db385ff4e, 8, 846},
		{"hello world", 0x00874a3ff97baffb, 0, 1019},
		{"key:000000000001", 0x2f5a5150dd92cd2a, 2, 298},
		{"0123456789abcdef", 0x04c445e3b36f8789, 0, 905},
		{"0123456789abcdefg", 0xf64f3195598d9d6a, 15, 362},
		{"a key that is longer than thirty-two bytes in total", 0x69d2e477bb498d00, 6, 256},
	} {
		h := Hash([]byte(v.key))
		if h != v.hash || shardOf(h, 16) != v.shard16 || h&1023 != v.low10 {
			t.Errorf("Hash(%q) = %#x (shard %d, low %d), want %#x (%d, %d)", v.key, h, shardOf(h, 16), h&1023,
				v.hash, v.shard16, v.low10)
		}
	}
}
