module github.com/cachecar/cachecar/examples/go

go 1.19

require (
	github.com/cachecar/cachecar/clients/go v0.0.0
	google.golang.org/grpc v1.64.1
)

require (
	golang.org/x/net v0.26.0 // indirect
	golang.org/x/sys v0.21.0 // indirect
	golang.org/x/text v0.16.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240318140521-94a12d6c2237 // indirect
	google.golang.org/protobuf v1.34.1 // indirect
)

// The library from this repo's own tree, so the example always builds against
// the library of the same commit. An app elsewhere leaves the replace out and
// requires a tagged version (clients/go/README.md).
replace github.com/cachecar/cachecar/clients/go => ../../clients/go
