// A spin-wait hint for the reader's retry loops (the seqlock retries in
// reader.cc, the hit-report slot lock in hit_reports.cc): pause on x86,
// yield on arm64, nothing elsewhere. Thread-safety: stateless.
#ifndef CACHECAR_LOCALREAD_CPU_RELAX_H_
#define CACHECAR_LOCALREAD_CPU_RELAX_H_

namespace cachecar::localread {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace cachecar::localread

#endif  // CACHECAR_LOCALREAD_CPU_RELAX_H_
