"""cachecar's Python client library (see cachecar.client and clients/python/README.md)."""
from cachecar._retry import RetryPolicy
from cachecar.client import (BatchEntry, BatchValues, Client, DeleteResult, Error, InvalidateResult,
                             PutResult, Source, Value, WatchEvent, WatchOp, WatchStream)
from cachecar.localread import Result as LocalResult

__all__ = ["BatchEntry", "BatchValues", "Client", "DeleteResult", "Error", "InvalidateResult",
           "LocalResult", "PutResult", "RetryPolicy", "Source", "Value", "WatchEvent", "WatchOp", "WatchStream"]
__version__ = "0.1.0"
