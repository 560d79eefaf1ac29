package localread

import (
	"os"
	"syscall"
)

func mmapRW(f *os.File, n int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func munmap(b []byte) { _ = syscall.Munmap(b) }
