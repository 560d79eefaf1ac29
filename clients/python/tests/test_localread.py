"""cachecar.localread, the ctypes binding of the C reader, without a sidecar:
its answers for a missing file, STRONG, a damaged file, and its library
lookup. Needs libcachecar_localread.so ($LIBCACHECAR_LOCALREAD; ctest's
clients_python sets it); skipped without it. Answers from cachecar's own
file are the local_* conformance cases'."""
import os
import tempfile
import unittest

from cachecar import localread
from cachecar.localread import Reader, Result

LIB = os.environ.get("LIBCACHECAR_LOCALREAD")


@unittest.skipUnless(LIB, "LIBCACHECAR_LOCALREAD is not set")
class ReaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "cache")

    def tearDown(self):
        self.dir.cleanup()

    def test_no_file_is_not_serving(self):
        r = Reader(self.path, report_hits=False)
        self.assertEqual(r.get("default", b"k"), (Result.NOT_SERVING, b"", 0))
        self.assertTrue(Result.NOT_SERVING.fallback)
        r.close()

    def test_strong_always_falls_back(self):
        r = Reader(self.path)
        self.assertEqual(r.get("", b"k", strong=True)[0], Result.STRONG)
        r.close()

    def test_a_damaged_file_falls_back(self):
        for name, data in (("garbage", os.urandom(8192)), ("truncated", b"cachecar" + b"\0" * 100),
                           ("wrong layout", b"cachecar" + (2).to_bytes(4, "little") + b"\0" * 8180)):
            with open(self.path, "wb") as f:
                f.write(data)
            r = Reader(self.path, report_hits=False)
            res = r.get("default", b"k")[0]
            self.assertTrue(res.fallback, name)
            self.assertIn(res, (Result.NOT_SERVING, Result.INCOMPATIBLE, Result.CORRUPT), name)
            r.close()

    def test_hit_and_absent_are_answers(self):
        self.assertFalse(Result.HIT.fallback)
        self.assertFalse(Result.ABSENT.fallback)


class LibraryTest(unittest.TestCase):
    def test_a_missing_library_says_what_to_do(self):
        saved = os.environ.pop("LIBCACHECAR_LOCALREAD", None)
        try:
            with self.assertRaises(RuntimeError) as e:
                localread._load("/nonexistent/libcachecar_localread.so")
            self.assertIn("LIBCACHECAR_LOCALREAD", str(e.exception))
        except AssertionError:
            # find_library found an installed copy: then loading it is fine.
            import ctypes.util
            if not ctypes.util.find_library("cachecar_localread"):
                raise
        finally:
            if saved is not None:
                os.environ["LIBCACHECAR_LOCALREAD"] = saved


if __name__ == "__main__":
    unittest.main()
