"""Receivers: OTLP over HTTP (FastAPI/uvicorn) and gRPC (grpc.aio), sharing one ingest path."""
