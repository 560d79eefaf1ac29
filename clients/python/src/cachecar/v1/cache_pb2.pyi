from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Consistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSISTENCY_CACHED: _ClassVar[Consistency]
    CONSISTENCY_STRONG: _ClassVar[Consistency]
    CONSISTENCY_CACHE_ONLY: _ClassVar[Consistency]

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_CACHE: _ClassVar[Source]
    SOURCE_STORE: _ClassVar[Source]
    SOURCE_NOT_CACHED: _ClassVar[Source]

class WatchOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_OP_UNSPECIFIED: _ClassVar[WatchOp]
    WATCH_OP_UPSERT: _ClassVar[WatchOp]
    WATCH_OP_DELETE: _ClassVar[WatchOp]
    WATCH_OP_INVALIDATE: _ClassVar[WatchOp]
    WATCH_OP_FLUSH: _ClassVar[WatchOp]
CONSISTENCY_CACHED: Consistency
CONSISTENCY_STRONG: Consistency
CONSISTENCY_CACHE_ONLY: Consistency
SOURCE_UNSPECIFIED: Source
SOURCE_CACHE: Source
SOURCE_STORE: Source
SOURCE_NOT_CACHED: Source
WATCH_OP_UNSPECIFIED: WatchOp
WATCH_OP_UPSERT: WatchOp
WATCH_OP_DELETE: WatchOp
WATCH_OP_INVALIDATE: WatchOp
WATCH_OP_FLUSH: WatchOp

class GetRequest(_message.Message):
    __slots__ = ("namespace", "key", "consistency", "min_version")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: str
    consistency: Consistency
    min_version: int
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[str] = ..., consistency: _Optional[_Union[Consistency, str]] = ..., min_version: _Optional[int] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value", "version", "source")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    version: int
    source: Source
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ..., version: _Optional[int] = ..., source: _Optional[_Union[Source, str]] = ...) -> None: ...

class BatchGetRequest(_message.Message):
    __slots__ = ("namespace", "keys", "consistency", "min_versions")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    consistency: Consistency
    min_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, namespace: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., consistency: _Optional[_Union[Consistency, str]] = ..., min_versions: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetEntry(_message.Message):
    __slots__ = ("key", "found", "value", "version", "source")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    key: str
    found: bool
    value: bytes
    version: int
    source: Source
    def __init__(self, key: _Optional[str] = ..., found: _Optional[bool] = ..., value: _Optional[bytes] = ..., version: _Optional[int] = ..., source: _Optional[_Union[Source, str]] = ...) -> None: ...

class BatchGetResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[BatchGetEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[BatchGetEntry, _Mapping]]] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("namespace", "key", "value", "if_version", "if_absent", "ttl_ms")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IF_VERSION_FIELD_NUMBER: _ClassVar[int]
    IF_ABSENT_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: str
    value: bytes
    if_version: int
    if_absent: bool
    ttl_ms: int
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., if_version: _Optional[int] = ..., if_absent: _Optional[bool] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("namespace", "key", "if_version")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    IF_VERSION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: str
    if_version: int
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[str] = ..., if_version: _Optional[int] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("found", "version")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    found: bool
    version: int
    def __init__(self, found: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class WriteBatchRequest(_message.Message):
    __slots__ = ("namespace", "writes")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    writes: _containers.RepeatedCompositeFieldContainer[BatchWrite]
    def __init__(self, namespace: _Optional[str] = ..., writes: _Optional[_Iterable[_Union[BatchWrite, _Mapping]]] = ...) -> None: ...

class BatchWrite(_message.Message):
    __slots__ = ("key", "value", "delete", "if_version", "if_absent", "ttl_ms")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    IF_VERSION_FIELD_NUMBER: _ClassVar[int]
    IF_ABSENT_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    delete: bool
    if_version: int
    if_absent: bool
    ttl_ms: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ..., delete: _Optional[bool] = ..., if_version: _Optional[int] = ..., if_absent: _Optional[bool] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class BatchWriteResult(_message.Message):
    __slots__ = ("key", "version", "found")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    key: str
    version: int
    found: bool
    def __init__(self, key: _Optional[str] = ..., version: _Optional[int] = ..., found: _Optional[bool] = ...) -> None: ...

class WriteBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchWriteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchWriteResult, _Mapping]]] = ...) -> None: ...

class InvalidateRequest(_message.Message):
    __slots__ = ("namespace", "keys", "all", "broadcast")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    broadcast: bool
    def __init__(self, namespace: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., broadcast: _Optional[bool] = ...) -> None: ...

class InvalidateResponse(_message.Message):
    __slots__ = ("dropped",)
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    dropped: int
    def __init__(self, dropped: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class NamespaceStats(_message.Message):
    __slots__ = ("namespace", "entries", "bytes", "max_bytes", "hits", "misses", "evictions", "loads", "expirations", "fills_rejected")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    EXPIRATIONS_FIELD_NUMBER: _ClassVar[int]
    FILLS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int
    loads: int
    expirations: int
    fills_rejected: int
    def __init__(self, namespace: _Optional[str] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., max_bytes: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ..., loads: _Optional[int] = ..., expirations: _Optional[int] = ..., fills_rejected: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("namespaces",)
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[NamespaceStats]
    def __init__(self, namespaces: _Optional[_Iterable[_Union[NamespaceStats, _Mapping]]] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("namespace", "key_prefix")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key_prefix: str
    def __init__(self, namespace: _Optional[str] = ..., key_prefix: _Optional[str] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("key", "version", "op", "local")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    key: str
    version: int
    op: WatchOp
    local: bool
    def __init__(self, key: _Optional[str] = ..., version: _Optional[int] = ..., op: _Optional[_Union[WatchOp, str]] = ..., local: _Optional[bool] = ...) -> None: ...
