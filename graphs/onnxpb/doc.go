// Package onnxpb holds the Go types generated from onnx.proto, the subset of the ONNX model
// format that the toolkit reads and writes. Use package graphs to load, build and save models;
// this package is only the wire format.
//
// Regenerate with protoc (Debian package protobuf-compiler) and protoc-gen-go from the module
// proxy: go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
