"""The OTLP exporter (gRPC and HTTP/protobuf) and its configuration."""
