"""The local read path: cache hits from the sidecar's published cache.

cachecar's C++ local reader (src/localread, docs/LOCAL_READS.md): it maps
the file cachecar publishes at local_read_path read-only and answers a hit
without a syscall or a gRPC call, exactly as a gRPC Get on that replica
would; everything else (miss, expired, STRONG, bypass, a restarting
sidecar, a damaged file) is a fallback the caller sends over gRPC.

Two bindings of the same reader:
- "native" (the default): cachecar._localread, a CPython extension the
  package builds from the reader's sources when it is installed (setup.py),
  so `pip install clients/python` is all local reads need.
- "ctypes": the C ABI (src/localread/cachecar_localread.h) of a
  libcachecar_localread.so built with cachecar (target
  cachecar_localread_shared), looked up, in order, at the path given to
  Reader, $LIBCACHECAR_LOCALREAD, beside this module, and on the dynamic
  linker's path. Slower per call (ctypes marshals every argument); kept for
  a package built without its extension and for comparison.
Reader(path) picks native when the extension is there, else ctypes; passing
library= (or backend="ctypes") asks for ctypes.

Thread-safety: a Reader may be used from many threads at once (the C reader
is thread-safe; the native binding holds the GIL for its short call; the
ctypes one gives each call its own buffer when the shared one is busy).
"""
import ctypes
import ctypes.util
import enum
import os
import threading
from typing import Optional, Tuple

try:
    from cachecar import _localread as _native
except ImportError:  # built without its extension: ctypes only
    _native = None

LAYOUT_VERSION = 1


class Result(enum.IntEnum):
    """The reader's answer (docs/LOCAL_READS.md's result codes). HIT and
    ABSENT are answers; every other value is why a Get went to gRPC."""
    NOT_TRIED = -1  # no local_read_path
    HIT = 0
    ABSENT = 1  # the key does not exist, at the version returned
    MISS = 2
    EXPIRED = 3
    STALE = 4  # the replica cannot vouch for its cache now (bypass)
    NOT_SERVING = 5  # no file yet, or starting, retired (restart) or replaced
    INCOMPATIBLE = 6
    CORRUPT = 7
    BUSY = 8
    STRONG = 9
    UNKNOWN_NAMESPACE = 10
    BAD_KEY = 11

    @property
    def fallback(self) -> bool:
        return self not in (Result.HIT, Result.ABSENT)


_HIT, _ABSENT = Result.HIT, Result.ABSENT
_BUFFER_TOO_SMALL = 12
_STRONG_READ = 1
_NO_HIT_REPORTS = 1


def _load(explicit: Optional[str]) -> ctypes.CDLL:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libcachecar_localread.so")
    candidates = [explicit, os.environ.get("LIBCACHECAR_LOCALREAD"), here,
                  ctypes.util.find_library("cachecar_localread")]
    tried = []
    for c in candidates:
        if not c:
            continue
        try:
            lib = ctypes.CDLL(c)
        except OSError as e:
            tried.append(f"{c}: {e}")
            continue
        lib.cachecar_localread_open.restype = ctypes.c_void_p
        lib.cachecar_localread_open.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
        lib.cachecar_localread_close.restype = None
        lib.cachecar_localread_close.argtypes = [ctypes.c_void_p]
        lib.cachecar_localread_get.restype = ctypes.c_int
        lib.cachecar_localread_get.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_uint64)]
        lib.cachecar_localread_layout_version.restype = ctypes.c_uint32
        lib.cachecar_localread_flush_hits.restype = None
        lib.cachecar_localread_flush_hits.argtypes = [ctypes.c_void_p]
        version = lib.cachecar_localread_layout_version()
        if version != LAYOUT_VERSION:
            raise RuntimeError(f"{c} reads layout {version}; this package binds layout "
                               f"{LAYOUT_VERSION}: use the library built with the same cachecar")
        return lib
    raise RuntimeError(
        "local reads need libcachecar_localread.so (cachecar's target cachecar_localread_shared): "
        "set LIBCACHECAR_LOCALREAD to its path, or pass localread_library=; tried: "
        + ("; ".join(tried) if tried else "nothing (no candidate path)"))


_RESULTS = tuple(Result(i) for i in range(12))


def native_available() -> bool:
    """Whether the package's own native reader (cachecar._localread) is built."""
    return _native is not None


class Reader:
    """Answers get() from the file at `path` (cachecar's local_read_path).
    Never fails to open: while the file is missing or unusable, get()
    returns NOT_SERVING (or INCOMPATIBLE, CORRUPT) and the file is tried
    again later. `backend`: "native", "ctypes", or None (native unless
    `library` is given or the extension is missing)."""

    def __new__(cls, path: str, *, library: Optional[str] = None, report_hits: bool = True,
                backend: Optional[str] = None):
        if backend is None:
            backend = "native" if _native is not None and library is None else "ctypes"
        if backend == "native":
            if _native is None:
                raise RuntimeError("cachecar._localread is not built (reinstall the package "
                                   "with a C++17 compiler), or use backend=\"ctypes\"")
            return super().__new__(NativeReader)
        if backend != "ctypes":
            raise ValueError(f"backend {backend!r}: \"native\" or \"ctypes\"")
        return super().__new__(CtypesReader)


class NativeReader(Reader):
    """Reader through cachecar._localread (one C call per get)."""

    backend = "native"

    def __init__(self, path: str, *, library: Optional[str] = None, report_hits: bool = True,
                 backend: Optional[str] = None):
        self._r = _native.Reader(os.fsencode(path), report_hits)
        self._get = self._r.get
        self.get_code = self._r.get  # the C function itself: no Python frame per call

    def close(self) -> None:
        self._r.close()

    def get(self, namespace: str, key, strong: bool = False) -> Tuple[Result, bytes, int]:
        """(result, value, version): HIT with the value, ABSENT with the
        delete's version, or a fallback with (b"", 0). key: str or bytes."""
        rc, value, version = self._get(namespace, key, strong)
        return _RESULTS[rc], value, version

    def get_code(self, namespace: str, key, strong: bool = False) -> Tuple[int, bytes, int]:
        """As get(), with the result as its number (0 HIT, 1 ABSENT): the
        client's hot path, without the enum lookup."""
        return self._get(namespace, key, strong)

    def flush_hits(self) -> None:
        """Sends the hits collected so far to cachecar's eviction now."""
        self._r.flush_hits()

    def stats(self) -> dict:
        return self._r.stats()


class CtypesReader(Reader):
    """Reader through libcachecar_localread.so's C ABI (ctypes)."""

    backend = "ctypes"

    def __init__(self, path: str, *, library: Optional[str] = None, report_hits: bool = True,
                 backend: Optional[str] = None):
        self._lib = _load(library)
        self._handle = self._lib.cachecar_localread_open(
            os.fsencode(path), 0 if report_hits else _NO_HIT_REPORTS)
        if not self._handle:
            raise MemoryError("cachecar_localread_open failed")
        # The hot path calls the function without argtypes, with every
        # argument already a ctypes object of the exact C type (about twice
        # as fast as ctypes converting ten arguments per call).
        self._fast = self._lib["cachecar_localread_get"]  # a function object of its own
        self._fast.restype = ctypes.c_int
        self._h = ctypes.c_void_p(self._handle)
        self._get = self._lib.cachecar_localread_get
        self._cap = 64 << 10
        self._cap_c = ctypes.c_size_t(self._cap)
        self._buf = ctypes.create_string_buffer(self._cap)
        self._len = ctypes.c_size_t()
        self._version = ctypes.c_uint64()
        self._len_p = ctypes.byref(self._len)
        self._version_p = ctypes.byref(self._version)
        self._flags = (ctypes.c_uint32(0), ctypes.c_uint32(_STRONG_READ))
        self._ns = {}  # namespace -> (bytes, c_size_t)
        self._busy = threading.Lock()  # the shared buffer's owner

    def close(self) -> None:
        if self._handle:
            self._lib.cachecar_localread_close(self._handle)
            self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def get(self, namespace: str, key: bytes, strong: bool = False) -> Tuple[Result, bytes, int]:
        """(result, value, version): HIT with the value, ABSENT with the
        delete's version, or a fallback with (b"", 0)."""
        nsc = self._ns.get(namespace)
        if nsc is None:
            b = namespace.encode() if namespace else b""
            nsc = self._ns[namespace] = (b, ctypes.c_size_t(len(b)))
        if type(key) is not bytes:
            key = key.encode() if isinstance(key, str) else bytes(key)
        if self._busy.acquire(blocking=False):
            try:
                rc = self._fast(self._h, nsc[0], nsc[1], key, ctypes.c_size_t(len(key)),
                                self._flags[1 if strong else 0], self._buf, self._cap_c, self._len_p,
                                self._version_p)
                if rc == 0:
                    return _HIT, ctypes.string_at(self._buf, self._len.value), self._version.value
                if rc == 1:
                    return _ABSENT, b"", self._version.value
                if rc != _BUFFER_TOO_SMALL:
                    return Result(rc), b"", 0
            finally:
                self._busy.release()
        ns = nsc[0]
        flags = _STRONG_READ if strong else 0
        # Another thread has the shared buffer: use one of our own.
        n, v = ctypes.c_size_t(), ctypes.c_uint64()
        return self._get_into(ns, key, flags, ctypes.create_string_buffer(4096), 4096, n,
                              ctypes.byref(n), v, ctypes.byref(v))

    def get_code(self, namespace: str, key, strong: bool = False) -> Tuple[int, bytes, int]:
        r, value, version = self.get(namespace, key, strong)
        return int(r), value, version

    def _get_into(self, ns, key, flags, buf, cap, n, n_p, v, v_p):
        rc = self._get(self._handle, ns, len(ns), key, len(key), flags, buf, cap, n_p, v_p)
        while rc == _BUFFER_TOO_SMALL:
            cap = n.value
            buf = ctypes.create_string_buffer(cap)
            rc = self._get(self._handle, ns, len(ns), key, len(key), flags, buf, cap, n_p, v_p)
        if rc == 0:
            return Result.HIT, ctypes.string_at(buf, n.value), v.value
        if rc == 1:
            return Result.ABSENT, b"", v.value
        return Result(rc), b"", 0

    def flush_hits(self) -> None:
        """Sends the hits collected so far to cachecar's eviction now."""
        self._lib.cachecar_localread_flush_hits(self._handle)
