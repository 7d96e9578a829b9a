"""Confluent's own Python client on either side of a Sluice job.

Writes orders with confluent-kafka's serializers (which register their
schemas the way they do against Confluent's server), and reads a job's
output back with its deserializers and the client's own reader schemas.
Every command prints what it wrote or read as JSON lines, one per order,
so the caller can compare them.

Usage:
  confluent_client.py produce  FORMAT BOOTSTRAP REGISTRY TOPIC COUNT
  confluent_client.py register FORMAT REGISTRY SUBJECT
  confluent_client.py consume  FORMAT BOOTSTRAP REGISTRY TOPIC COUNT
FORMAT is avro, json-schema or protobuf.
"""

import datetime
import decimal
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import (
    ProtobufDeserializer,
    ProtobufSerializer,
    _schema_to_str,
)
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, text_format
from google.protobuf import timestamp_pb2

STATUSES = ["NEW", "PAID", "SHIPPED"]

# An enum, a map, a date, a decimal, a nested record and an optional field.
AVRO_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "hc",
        "doc": "An order as the shop writes it.",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": STATUSES}},
            {"name": "quantities", "type": {"type": "map", "values": "long"}},
            {"name": "placed_on", "type": {"type": "int", "logicalType": "date"}},
            {
                "name": "total",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
            },
            {
                "name": "ship_to",
                "type": {
                    "type": "record",
                    "name": "Address",
                    "fields": [
                        {"name": "city", "type": "string"},
                        {"name": "zip", "type": ["null", "string"], "default": None},
                    ],
                },
            },
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)

JSON_SCHEMA = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": STATUSES},
            "quantities": {"type": "object", "additionalProperties": {"type": "integer"}},
            "placed_on": {"type": "string", "format": "date"},
            "total": {"type": "number"},
            "ship_to": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            },
            "note": {"type": "string"},
        },
        "required": ["id", "status", "quantities", "placed_on", "total", "ship_to"],
    }
)

# Protobuf has no date or decimal of its own: the date is a Timestamp (a
# well-known type), the total a string.
ORDER_PROTO = text_format.Parse(
    """
    name: "hc/order.proto" package: "hc" syntax: "proto3"
    dependency: "google/protobuf/timestamp.proto"
    message_type {
      name: "Order"
      field { name: "id" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 }
      field { name: "status" number: 2 label: LABEL_OPTIONAL type: TYPE_ENUM type_name: ".hc.Order.Status" }
      field { name: "quantities" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".hc.Order.QuantitiesEntry" }
      field { name: "placed" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" }
      field { name: "total" number: 5 label: LABEL_OPTIONAL type: TYPE_STRING }
      field { name: "ship_to" number: 6 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".hc.Order.Address" }
      field { name: "note" number: 7 label: LABEL_OPTIONAL type: TYPE_STRING proto3_optional: true oneof_index: 0 }
      oneof_decl { name: "_note" }
      nested_type {
        name: "QuantitiesEntry"
        field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
        field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT64 }
        options { map_entry: true }
      }
      nested_type {
        name: "Address"
        field { name: "city" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
        field { name: "zip" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
      }
      enum_type {
        name: "Status"
        value { name: "NEW" number: 0 } value { name: "PAID" number: 1 } value { name: "SHIPPED" number: 2 }
      }
    }
    """,
    descriptor_pb2.FileDescriptorProto(),
)


def proto_order_class():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(ORDER_PROTO)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("hc.Order"))


def order(i):
    """Order i as plain values: every field varies with i."""
    return {
        "id": i,
        "status": STATUSES[i % 3],
        "quantities": {f"sku-{k}": i * 10 + k for k in range(i % 3)},
        "placed_on": datetime.date(2026, 1, 1) + datetime.timedelta(days=i),
        "total": (decimal.Decimal(i * 137) / 100).quantize(decimal.Decimal("0.01")),
        "ship_to": {"city": f"city-{i % 7}", "zip": None if i % 4 == 0 else f"{10000 + i}"},
        "note": None if i % 5 else f"note {i}",
    }


def for_avro(o, _ctx=None):
    return o


def for_json(o, _ctx=None):
    o = dict(o, placed_on=o["placed_on"].isoformat(), total=float(o["total"]))
    o["ship_to"] = {k: v for k, v in o["ship_to"].items() if v is not None}
    return {k: v for k, v in o.items() if v is not None}


def for_protobuf(o, cls):
    m = cls(
        id=o["id"],
        status=o["status"],
        total=str(o["total"]),
        ship_to=cls.Address(city=o["ship_to"]["city"], zip=o["ship_to"]["zip"] or ""),
    )
    m.quantities.update(o["quantities"])
    m.placed.FromDatetime(
        datetime.datetime.combine(o["placed_on"], datetime.time(), datetime.timezone.utc)
    )
    if o["note"] is not None:
        m.note = o["note"]
    return m


def plain(value):
    """A read value as JSON lines print it."""
    if hasattr(value, "DESCRIPTOR"):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def serializer(fmt, registry):
    if fmt == "avro":
        return AvroSerializer(registry, AVRO_SCHEMA), for_avro
    if fmt == "json-schema":
        return JSONSerializer(JSON_SCHEMA, registry), for_json
    cls = proto_order_class()
    return ProtobufSerializer(cls, registry), lambda o: for_protobuf(o, cls)


def deserializer(fmt, registry):
    if fmt == "avro":
        return AvroDeserializer(registry, AVRO_SCHEMA)
    if fmt == "json-schema":
        return JSONDeserializer(JSON_SCHEMA, schema_registry_client=registry)
    return ProtobufDeserializer(proto_order_class(), schema_registry_client=registry)


def produce(fmt, bootstrap, registry, topic, count):
    serialize, shape = serializer(fmt, registry)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    context = SerializationContext(topic, MessageField.VALUE)
    for i in range(count):
        value = shape(order(i))
        producer.produce(topic, key=f"k{i}".encode(), value=serialize(value, context))
        print(json.dumps(plain(value), sort_keys=True))
        producer.poll(0)
    if producer.flush(60) != 0:
        sys.exit("produce: not every record was delivered")


def register(fmt, registry, subject):
    """Registers the client's own schema under SUBJECT, as a team does for an output topic."""
    if fmt == "avro":
        schema = Schema(AVRO_SCHEMA, "AVRO")
    elif fmt == "json-schema":
        schema = Schema(JSON_SCHEMA, "JSON")
    else:
        # As ProtobufSerializer sends it: the file descriptor, base64.
        schema = Schema(_schema_to_str(proto_order_class().DESCRIPTOR.file), "PROTOBUF")
    print(registry.register_schema(subject, schema))


def consume(fmt, bootstrap, registry, topic, count):
    deserialize = deserializer(fmt, registry)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"conformance-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    context = SerializationContext(topic, MessageField.VALUE)
    deadline = time.monotonic() + 60
    read = 0
    while read < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consume: {message.error()}")
        print(json.dumps(plain(deserialize(message.value(), context)), sort_keys=True))
        read += 1
    consumer.close()
    if read < count:
        sys.exit(f"consume: read {read} of {count} records in 60 s")


def main(args):
    command, fmt = args[0], args[1]
    if fmt not in ("avro", "json-schema", "protobuf"):
        sys.exit(f"unknown format {fmt}")
    if command == "register":
        register(fmt, SchemaRegistryClient({"url": args[2]}), args[3])
        return
    bootstrap, registry, topic, count = args[2], args[3], args[4], int(args[5])
    registry = SchemaRegistryClient({"url": registry})
    {"produce": produce, "consume": consume}[command](fmt, bootstrap, registry, topic, count)


if __name__ == "__main__":
    main(sys.argv[1:])
