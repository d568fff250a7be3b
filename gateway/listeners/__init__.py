"""Network listeners: the embedded HTTP server, connection guards and
limits for HTTP and gRPC, their settings, and the file-descriptor budget."""
