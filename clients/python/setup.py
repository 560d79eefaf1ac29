"""Builds cachecar._localread, the package's native local reader: a CPython
extension (native/localread_module.cc) over cachecar's C++ reader, compiled
from the reader's own sources in this repo (native/localread is a link to
src/localread; an sdist carries the files themselves). Needs a C++17
compiler; everything else is in pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "cachecar._localread",
    sources=["native/localread_module.cc", "native/localread/reader.cc",
             "native/localread/mapping.cc", "native/localread/hit_reports.cc"],
    include_dirs=["native"],  # "localread/reader.h", as in the repo
    depends=["native/localread/reader.h", "native/localread/mapping.h",
             "native/localread/layout.h", "native/localread/cpu_relax.h"],
    language="c++",
    extra_compile_args=["-std=c++17", "-O2", "-fvisibility=hidden"],
)])
