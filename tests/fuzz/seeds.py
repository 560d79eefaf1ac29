#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/: ordinary inputs, and the
hostile inputs of issue #17 (alias bombs, deep nesting, huge quantities,
tiny-node JSON, duplicate Content-Length, ...). Run from anywhere; it
rewrites only the files it names (libFuzzer may add others to a copy)."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- protobuf SyncEvent -------------------------------------------------------
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    tag = varint((num << 3) | wire)
    if wire == 0:
        return tag + varint(payload)
    return tag + varint(len(payload)) + payload


def event(ns=b"default", key=b"user:1", version=7, op=1, value=None, origin=b"r1", micros=0):
    out = field(1, 2, ns) + field(2, 2, key) + field(3, 0, version) + field(4, 0, op)
    if value is not None:
        out += field(5, 2, value)
    return out + field(6, 2, origin) + field(7, 0, micros)


put("fuzz_decode_event", "upsert", event(value=b"alice"))
put("fuzz_decode_event", "delete", event(op=2))
put("fuzz_decode_event", "invalidate", event(op=3, version=0))
put("fuzz_decode_event", "flush_all", event(ns=b"", key=b"", op=4, version=0))
put("fuzz_decode_event", "relay", event(origin=b"relay/r2", value=b""))
put("fuzz_decode_event", "no_op", event(op=0))
put("fuzz_decode_event", "unknown_op", event(op=99))
put("fuzz_decode_event", "value_on_delete", event(op=2, value=b"x"))
put("fuzz_decode_event", "bad_utf8_key", event(key=b"\xff\xfe"))
put("fuzz_decode_event", "max_version", event(version=2**64 - 1, micros=2**63 - 1))
put("fuzz_decode_event", "truncated_varint", b"\x18\xff\xff\xff")
put("fuzz_decode_event", "huge_length", b"\x0a\xff\xff\xff\xff\x0f")
# Unknown groups nested deeper than protobuf's recursion limit.
put("fuzz_decode_event", "deep_groups", b"\x43" * 200 + b"\x44" * 200)
put("fuzz_decode_event", "empty", b"")

# --- config YAML --------------------------------------------------------------
def laughs(levels=9, width=9, indent=""):
    lines = [indent + 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(indent + "a%d: &a%d [%s]" % (i, i, ",".join(["*a%d" % (i - 1)] * width)))
    return "\n".join(lines) + "\n"


put("fuzz_config_yaml", "example",
    "listen: [127.0.0.1:50051, unix:///run/c.sock]\nmax_bytes: 64MiB\nworkers: 4\n"
    "namespaces:\n  - {name: users, ttl: 10m, max_bytes_share: 0.5}\n  - name: default\n"
    "kafka_properties:\n  security.protocol: SSL\n")
put("fuzz_config_yaml", "billion_laughs", laughs())
put("fuzz_config_yaml", "deep_10000", "listen: " + "[" * 10000 + "]" * 10000 + "\n")
put("fuzz_config_yaml", "deep_maps", "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 60)))
put("fuzz_config_yaml", "two_documents", "workers: 2\n---\nmax_bytes: 64MiB\n")
put("fuzz_config_yaml", "share_zero", "namespaces:\n  - {name: a, max_bytes_share: 0}\n")
put("fuzz_config_yaml", "max_bytes_max", "max_bytes: 18446744073709551615\n")
put("fuzz_config_yaml", "zeros", b"\0" * 4096)
put("fuzz_config_yaml", "bad_metrics_listen", "metrics_listen: 256.0.0.0:9464\n")
put("fuzz_config_yaml", "self_alias", "listen: &x [*x]\n")
put("fuzz_config_yaml", "tabs_and_bom", "\ufeffworkers:\t2\n")

# --- inject YAML --------------------------------------------------------------
put("fuzz_inject_yaml", "app", open(os.path.join(repo, "tests/inject/app.yaml")).read())
pod = ('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n'
       '    cachecar.io/inject: "true"\n    cachecar.io/memory-limit: "%s"\n'
       'spec:\n  containers: [{name: app, image: nginx}]\n')
put("fuzz_inject_yaml", "pod", pod % "1Gi")
put("fuzz_inject_yaml", "huge_quantity", pod % ("9" * 50000))
put("fuzz_inject_yaml", "billion_laughs",
    'kind: Pod\nmetadata:\n  name: lol\n  annotations: {cachecar.io/inject: "true"}\n  labels:\n' +
    laughs(indent="    ") + "spec:\n  containers: [{name: app}]\n")
put("fuzz_inject_yaml", "deep", "kind: Pod\nspec: " + "[" * 10000 + "]" * 10000 + "\n")
put("fuzz_inject_yaml", "cronjob",
    'kind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n'
    '        metadata: {annotations: {cachecar.io/inject: "true", cachecar.io/port: "6000"}}\n'
    '        spec: {containers: [{name: a}], volumes: [{name: v, emptyDir: {}}]}\n')
put("fuzz_inject_yaml", "odd_shapes", "kind: Deployment\nspec: 5\n---\nkind: [1]\n---\n- a\n")

# --- HTTP requests (first byte: chunk size for the split) ----------------------
review = open(os.path.join(repo, "tests/inject/pod-review.json"), "rb").read()
post = b"POST /mutate?timeout=5s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
put("fuzz_http_request", "post", b"\x03" + post + b"Content-Length: %d\r\n\r\n" % len(review) + review)
put("fuzz_http_request", "healthz", b"\x00GET /healthz HTTP/1.1\r\n\r\n")
put("fuzz_http_request", "duplicate_length",
    b"\x05POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 100\r\n\r\nhello")
put("fuzz_http_request", "chunked_and_length",
    b"\x01POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc")
put("fuzz_http_request", "half_sent", b"\x01POST /mutate HTTP/1.1\r\nContent-Length: 100\r\n\r\nab")
put("fuzz_http_request", "endless_header", b"\x10GET / HTTP/1.1\r\nX: " + b"a" * 2000)
put("fuzz_http_request", "folded", b"\x02GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n")
put("fuzz_http_request", "bare_lf", b"\x02GET / HTTP/1.1\nA: b\n\n")
put("fuzz_http_request", "http2", b"\x07PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

# --- AdmissionReview JSON -------------------------------------------------------
put("fuzz_admission_review", "pod_review", review)
def wrap(pod_json):
    return ('{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
            '{"uid":"u-1","object":%s}}' % pod_json)
annotated = '{"metadata":{"annotations":{"cachecar.io/inject":"true"%s}},"spec":{"containers":[{"name":"app"}]%s}}'
put("fuzz_admission_review", "annotated", wrap(annotated % ("", "")))
put("fuzz_admission_review", "huge_quantity",
    wrap(annotated % (',"cachecar.io/cpu-request":"%s"' % ("9" * 50000), "")))
put("fuzz_admission_review", "tiny_nodes",
    wrap(annotated % ("", ',"x":[' + ",".join(["0"] * 120000) + "]")))
put("fuzz_admission_review", "deep", wrap("[" * 5000 + "]" * 5000))
put("fuzz_admission_review", "existing_volumes",
    wrap('{"metadata":{"annotations":{"cachecar.io/inject":"true"}},"spec":{"initContainers":'
         '[{"name":"m"}],"volumes":[{"name":"data"}],"containers":[{"name":"app"}]}}'))
put("fuzz_admission_review", "bad_utf8", b'{"request":{"uid":"\xff"}}')
put("fuzz_admission_review", "uid_number", '{"request":{"uid":7}}')
