"""Generated stubs of proto/cachecar/v1/cache.proto (clients/python/generate.sh)."""
