"""cachecar.localread without a sidecar, through both bindings of the C++
reader: the package's native extension (cachecar._localread, built by pip
install; NativeReaderTest) and ctypes over libcachecar_localread.so
($LIBCACHECAR_LOCALREAD, which ctest's clients_python sets; CtypesReaderTest
is skipped without it): their answers for a missing file, STRONG, a damaged
file, and the ctypes library lookup. Answers from cachecar's own file are
the local_* conformance cases'. CACHECAR_REQUIRE_NATIVE=1 makes a missing
extension a failure, not a skip (tests/clients/python.sh's fresh install)."""
import os
import tempfile
import unittest

from cachecar import localread
from cachecar.localread import Reader, Result

LIB = os.environ.get("LIBCACHECAR_LOCALREAD")


class ReaderCases:
    backend = None

    def open(self, path, **kw):
        r = Reader(path, backend=self.backend, **kw)
        self.assertEqual(r.backend, self.backend)
        return r

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "cache")

    def tearDown(self):
        self.dir.cleanup()

    def test_no_file_is_not_serving(self):
        r = self.open(self.path, report_hits=False)
        self.assertEqual(r.get("default", b"k"), (Result.NOT_SERVING, b"", 0))
        self.assertTrue(Result.NOT_SERVING.fallback)
        r.close()

    def test_strong_always_falls_back(self):
        r = self.open(self.path)
        self.assertEqual(r.get("", b"k", strong=True)[0], Result.STRONG)
        r.close()

    def test_a_damaged_file_falls_back(self):
        for name, data in (("garbage", os.urandom(8192)), ("truncated", b"cachecar" + b"\0" * 100),
                           ("wrong layout", b"cachecar" + (2).to_bytes(4, "little") + b"\0" * 8180)):
            with open(self.path, "wb") as f:
                f.write(data)
            r = self.open(self.path, report_hits=False)
            res = r.get("default", b"k")[0]
            self.assertTrue(res.fallback, name)
            self.assertIn(res, (Result.NOT_SERVING, Result.INCOMPATIBLE, Result.CORRUPT), name)
            r.close()

    def test_keys_may_be_str_or_bytes(self):
        r = self.open(self.path, report_hits=False)
        self.assertEqual(r.get("default", "k")[0], Result.NOT_SERVING)
        self.assertEqual(r.get_code("default", b"k"), (int(Result.NOT_SERVING), b"", 0))
        r.close()

    def test_hit_and_absent_are_answers(self):
        self.assertFalse(Result.HIT.fallback)
        self.assertFalse(Result.ABSENT.fallback)


class NativeReaderTest(ReaderCases, unittest.TestCase):
    backend = "native"

    @classmethod
    def setUpClass(cls):
        if not localread.native_available():
            if os.environ.get("CACHECAR_REQUIRE_NATIVE") == "1":
                raise AssertionError("cachecar._localread was not built by the install")
            raise unittest.SkipTest("cachecar._localread is not built")

    def test_is_the_default(self):
        r = Reader(self.path)
        self.assertEqual(r.backend, "native")
        r.close()

    def test_closed_reader_raises(self):
        r = self.open(self.path)
        r.close()
        with self.assertRaises(ValueError):
            r.get("default", b"k")


@unittest.skipUnless(LIB, "LIBCACHECAR_LOCALREAD is not set")
class CtypesReaderTest(ReaderCases, unittest.TestCase):
    backend = "ctypes"


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
