"""Loki's push messages (``logproto.PushRequest`` and friends), built at import time.

Loki publishes ``pkg/push/push.proto`` with gogoproto options; those options change the Go
code, not the wire format, so a plain proto3 descriptor with the same field numbers and types
encodes exactly what Loki decodes::

    PushRequest      { repeated StreamAdapter streams = 1; string format = 2; }
    StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                       repeated LabelPairAdapter structuredMetadata = 3;
                       repeated LabelPairAdapter parsed = 4; }
    LabelPairAdapter { string name = 1; string value = 2; }

The classes live in a private descriptor pool, so they never clash with another definition of
the ``logproto`` package in the same process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

_Field = descriptor_pb2.FieldDescriptorProto
_TIMESTAMP_FILE = "google/protobuf/timestamp.proto"

# (message, [(field name, number, label, type, message type name or "")])
_MESSAGES: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    (
        "PushRequest",
        [
            ("streams", 1, _Field.LABEL_REPEATED, _Field.TYPE_MESSAGE, ".logproto.StreamAdapter"),
            ("format", 2, _Field.LABEL_OPTIONAL, _Field.TYPE_STRING, ""),
        ],
    ),
    ("PushResponse", []),
    (
        "StreamAdapter",
        [
            ("labels", 1, _Field.LABEL_OPTIONAL, _Field.TYPE_STRING, ""),
            ("entries", 2, _Field.LABEL_REPEATED, _Field.TYPE_MESSAGE, ".logproto.EntryAdapter"),
            ("hash", 3, _Field.LABEL_OPTIONAL, _Field.TYPE_UINT64, ""),
        ],
    ),
    (
        "LabelPairAdapter",
        [
            ("name", 1, _Field.LABEL_OPTIONAL, _Field.TYPE_STRING, ""),
            ("value", 2, _Field.LABEL_OPTIONAL, _Field.TYPE_STRING, ""),
        ],
    ),
    (
        "EntryAdapter",
        [
            (
                "timestamp",
                1,
                _Field.LABEL_OPTIONAL,
                _Field.TYPE_MESSAGE,
                ".google.protobuf.Timestamp",
            ),
            ("line", 2, _Field.LABEL_OPTIONAL, _Field.TYPE_STRING, ""),
            (
                "structuredMetadata",
                3,
                _Field.LABEL_REPEATED,
                _Field.TYPE_MESSAGE,
                ".logproto.LabelPairAdapter",
            ),
            (
                "parsed",
                4,
                _Field.LABEL_REPEATED,
                _Field.TYPE_MESSAGE,
                ".logproto.LabelPairAdapter",
            ),
        ],
    ),
]


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The ``logproto`` push schema as a FileDescriptorProto."""
    file = descriptor_pb2.FileDescriptorProto(
        name="otelgate/exporters/loki/push.proto",
        package="logproto",
        syntax="proto3",
        dependency=[_TIMESTAMP_FILE],
    )
    for message_name, fields in _MESSAGES:
        message = file.message_type.add(name=message_name)
        for name, number, label, kind, type_name in fields:
            field = message.field.add(name=name, number=number, label=label, type=kind)
            field.json_name = name
            if type_name:
                field.type_name = type_name
    return file


def _build() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    timestamp_file = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp_file)
    pool.Add(timestamp_file)
    pool.Add(_file_descriptor())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"logproto.{name}"))
        for name, _ in _MESSAGES
    }


_CLASSES = _build()
# The message classes (typed Any: they are generated at run time).
PushRequest: Any = _CLASSES["PushRequest"]
StreamAdapter: Any = _CLASSES["StreamAdapter"]
EntryAdapter: Any = _CLASSES["EntryAdapter"]
LabelPairAdapter: Any = _CLASSES["LabelPairAdapter"]
