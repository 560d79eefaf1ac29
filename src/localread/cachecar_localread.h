/* The local reader's C ABI: answers cachecar cache hits from the file it
 * publishes at local_read_path (docs/LOCAL_READS.md), for C programs and for
 * bindings (Python ctypes/cffi). A thin wrapper over localread/reader.h,
 * with the same behaviour and the same result numbers.
 *
 * Thread-safety: a handle may be used from many threads at once; close it
 * only when no call is in flight. */
#ifndef CACHECAR_LOCALREAD_CACHECAR_LOCALREAD_H_
#define CACHECAR_LOCALREAD_CACHECAR_LOCALREAD_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cachecar_localread cachecar_localread;

/* Results of cachecar_localread_get. HIT and ABSENT are answers;
 * BUFFER_TOO_SMALL asks for a larger buffer; every other code is a fallback:
 * ask cachecar's Get over gRPC (the code says why, for metrics and logs). */
enum {
  CACHECAR_LOCALREAD_HIT = 0,          /* value and version */
  CACHECAR_LOCALREAD_ABSENT = 1,       /* the key does not exist, at version */
  CACHECAR_LOCALREAD_MISS = 2,         /* not cached */
  CACHECAR_LOCALREAD_EXPIRED = 3,      /* cached, TTL passed */
  CACHECAR_LOCALREAD_STALE = 4,        /* the replica cannot vouch for its cache now */
  CACHECAR_LOCALREAD_NOT_SERVING = 5,  /* no file, or starting, retired or replaced */
  CACHECAR_LOCALREAD_INCOMPATIBLE = 6, /* another layout version */
  CACHECAR_LOCALREAD_CORRUPT = 7,      /* the file failed a bounds check */
  CACHECAR_LOCALREAD_BUSY = 8,         /* the entry kept changing while read */
  CACHECAR_LOCALREAD_STRONG = 9,       /* STRONG consistency asked */
  CACHECAR_LOCALREAD_UNKNOWN_NAMESPACE = 10,
  CACHECAR_LOCALREAD_BAD_KEY = 11,         /* empty or longer than max_key_bytes */
  CACHECAR_LOCALREAD_BUFFER_TOO_SMALL = 12 /* *value_len holds the size needed */
};

/* cachecar_localread_open flags. */
#define CACHECAR_LOCALREAD_NO_HIT_REPORTS 1u /* do not report hits to eviction */
/* cachecar_localread_get flags. */
#define CACHECAR_LOCALREAD_STRONG_READ 1u /* consistency STRONG: always a fallback */

/* The layout version this library reads. */
uint32_t cachecar_localread_layout_version(void);

/* A reader of the file at `path`. It opens the file lazily and reopens it
 * when cachecar replaces it, so this succeeds whether or not the file is
 * there yet; NULL only for a NULL path or when out of memory. */
cachecar_localread* cachecar_localread_open(const char* path, uint32_t flags);
void cachecar_localread_close(cachecar_localread* reader);

/* Looks `key` up in namespace `ns` (ns_len 0 means "default"). On HIT the
 * value is copied to buf (capacity bytes) and *value_len set; on HIT and
 * ABSENT *version is set. value_len and version may be NULL. */
int cachecar_localread_get(cachecar_localread* reader, const char* ns, size_t ns_len,
                           const char* key, size_t key_len, uint32_t flags, char* buf,
                           size_t capacity, size_t* value_len, uint64_t* version);

/* 1 if `code` means "ask cachecar over gRPC", else 0. */
int cachecar_localread_is_fallback(int code);
/* "HIT", "MISS", ... (a static string). */
const char* cachecar_localread_result_name(int code);
/* Sends the hits collected so far to cachecar now. */
void cachecar_localread_flush_hits(cachecar_localread* reader);

#ifdef __cplusplus
}
#endif

#endif /* CACHECAR_LOCALREAD_CACHECAR_LOCALREAD_H_ */
