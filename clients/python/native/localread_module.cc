// cachecar._localread: the CPython extension over cachecar's C++ local
// reader (src/localread, docs/LOCAL_READS.md), built by the package's own
// build (setup.py) from the reader's sources in this repo, so that
// `pip install clients/python` gives working local reads with no library
// to provide. One call per Get with no argument conversion beyond the C
// API's: ctypes' per-call marshalling was most of a Python local hit's cost.
//
//   r = _localread.Reader(path, report_hits)
//   code, value, version = r.get(namespace, key, strong=False)
//     code: the reader's result number (0 HIT, 1 ABSENT, else a fallback);
//     value: bytes (b"" unless HIT); version: int (0 for a fallback).
//     namespace: str ("" = "default"); key: str (UTF-8) or bytes.
//   r.flush_hits(); r.close(); r.stats() -> dict
//
// Thread-safety: a Reader may be used from many threads at once (the C++
// reader is thread-safe). get() holds the GIL: it never blocks (a reopen
// is an open and an mmap), and releasing the GIL would cost more than the
// read. close() while another thread is inside get() is prevented by the
// GIL too (get never releases it).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <new>
#include <string>

#include "localread/layout.h"
#include "localread/reader.h"

namespace {

using cachecar::localread::Reader;
using cachecar::localread::ReaderOptions;
using cachecar::localread::Result;

struct ReaderObject {
  PyObject_HEAD Reader* reader;
};

PyObject* g_empty = nullptr;  // b""

int ReaderInit(ReaderObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"path", "report_hits", nullptr};
  PyObject* path = nullptr;
  int report_hits = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|p", const_cast<char**>(kwlist),
                                   PyUnicode_FSConverter, &path, &report_hits)) {
    return -1;
  }
  ReaderOptions options;
  options.path.assign(PyBytes_AS_STRING(path), PyBytes_GET_SIZE(path));
  Py_DECREF(path);
  options.report_hits = report_hits != 0;
  delete self->reader;
  self->reader = new (std::nothrow) Reader(std::move(options));
  if (self->reader == nullptr) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

void ReaderDealloc(ReaderObject* self) {
  delete self->reader;
  self->reader = nullptr;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(reinterpret_cast<PyObject*>(self));
  Py_DECREF(type);
}

// str -> its UTF-8 (cached by CPython in the object); bytes -> as is.
bool View(PyObject* o, const char* what, const char** p, Py_ssize_t* n) {
  if (PyUnicode_Check(o)) {
    *p = PyUnicode_AsUTF8AndSize(o, n);
    return *p != nullptr;
  }
  if (PyBytes_Check(o)) {
    *p = PyBytes_AS_STRING(o);
    *n = PyBytes_GET_SIZE(o);
    return true;
  }
  PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.100s", what, Py_TYPE(o)->tp_name);
  return false;
}

PyObject* Answer(int code, PyObject* value, uint64_t version) {
  PyObject* t = PyTuple_New(3);
  if (t == nullptr) {
    Py_DECREF(value);
    return nullptr;
  }
  PyTuple_SET_ITEM(t, 0, PyLong_FromLong(code));  // small ints are cached
  PyTuple_SET_ITEM(t, 1, value);
  PyTuple_SET_ITEM(t, 2, PyLong_FromUnsignedLongLong(version));
  return t;
}

PyObject* ReaderGet(ReaderObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 2 || nargs > 3) {
    PyErr_SetString(PyExc_TypeError, "get(namespace, key, strong=False)");
    return nullptr;
  }
  if (self->reader == nullptr) {
    PyErr_SetString(PyExc_ValueError, "the reader is closed");
    return nullptr;
  }
  const char *ns, *key;
  Py_ssize_t ns_len, key_len;
  if (!View(args[0], "namespace", &ns, &ns_len) || !View(args[1], "key", &key, &key_len)) {
    return nullptr;
  }
  bool strong = false;
  if (nargs == 3) {
    const int t = PyObject_IsTrue(args[2]);
    if (t < 0) return nullptr;
    strong = t != 0;
  }
  char buf[2048];
  size_t len = 0;
  uint64_t version = 0;
  Result r =
      self->reader->GetInto({ns, static_cast<size_t>(ns_len)}, {key, static_cast<size_t>(key_len)},
                            buf, sizeof buf, &len, &version, strong);
  if (r == Result::kHit) {
    PyObject* value = PyBytes_FromStringAndSize(buf, static_cast<Py_ssize_t>(len));
    return value == nullptr ? nullptr : Answer(0, value, version);
  }
  // A larger value: read it straight into a bytes object of its size (the
  // entry may change between calls, so ask again until it fits).
  while (r == Result::kBufferTooSmall) {
    PyObject* value = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(len));
    if (value == nullptr) return nullptr;
    const size_t capacity = len;
    r = self->reader->GetInto({ns, static_cast<size_t>(ns_len)},
                              {key, static_cast<size_t>(key_len)}, PyBytes_AS_STRING(value),
                              capacity, &len, &version, strong);
    if (r == Result::kHit) {
      if (len != capacity && _PyBytes_Resize(&value, static_cast<Py_ssize_t>(len)) != 0) {
        return nullptr;
      }
      return Answer(0, value, version);
    }
    Py_DECREF(value);
  }
  Py_INCREF(g_empty);
  return Answer(static_cast<int>(r), g_empty, r == Result::kAbsent ? version : 0);
}

PyObject* ReaderFlushHits(ReaderObject* self, PyObject*) {
  if (self->reader != nullptr) self->reader->FlushHits();
  Py_RETURN_NONE;
}

PyObject* ReaderClose(ReaderObject* self, PyObject*) {
  delete self->reader;
  self->reader = nullptr;
  Py_RETURN_NONE;
}

PyObject* ReaderStats(ReaderObject* self, PyObject*) {
  if (self->reader == nullptr) return PyDict_New();
  const cachecar::localread::ReaderStats s = self->reader->Stats();
  return Py_BuildValue(
      "{s:K,s:K,s:K,s:K,s:K,s:i}", "opens", (unsigned long long)s.opens, "open_failures",
      (unsigned long long)s.open_failures, "reports_sent", (unsigned long long)s.reports_sent,
      "reports_dropped", (unsigned long long)s.reports_dropped, "mapped_bytes",
      (unsigned long long)s.mapped_bytes, "last_open_result", static_cast<int>(s.last_open_result));
}

PyMethodDef kReaderMethods[] = {
    {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ReaderGet)), METH_FASTCALL,
     "get(namespace, key, strong=False) -> (code, value, version)"},
    {"flush_hits", reinterpret_cast<PyCFunction>(ReaderFlushHits), METH_NOARGS,
     "Sends the hits collected so far to cachecar now."},
    {"close", reinterpret_cast<PyCFunction>(ReaderClose), METH_NOARGS,
     "Unmaps the file; get() then raises ValueError."},
    {"stats", reinterpret_cast<PyCFunction>(ReaderStats), METH_NOARGS, "The reader's counters."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot kReaderSlots[] = {
    {Py_tp_init, reinterpret_cast<void*>(ReaderInit)},
    {Py_tp_dealloc, reinterpret_cast<void*>(ReaderDealloc)},
    {Py_tp_methods, kReaderMethods},
    {Py_tp_new, reinterpret_cast<void*>(PyType_GenericNew)},
    {Py_tp_doc, const_cast<char*>("Reader(path, report_hits=True): cachecar's local reader.")},
    {0, nullptr}};

PyType_Spec kReaderSpec = {"cachecar._localread.Reader", sizeof(ReaderObject), 0,
                           Py_TPFLAGS_DEFAULT, kReaderSlots};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "cachecar._localread",
                       "cachecar's C++ local reader (see cachecar.localread).", -1, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__localread(void) {
  PyObject* m = PyModule_Create(&kModule);
  if (m == nullptr) return nullptr;
  g_empty = PyBytes_FromStringAndSize("", 0);
  PyObject* type = PyType_FromSpec(&kReaderSpec);
  if (g_empty == nullptr || type == nullptr || PyModule_AddObject(m, "Reader", type) != 0 ||
      PyModule_AddIntConstant(m, "LAYOUT_VERSION", cachecar::localread::kLayoutVersion) != 0) {
    Py_XDECREF(type);
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
