#!/usr/bin/env python3
"""The baselines for bench/consumer.sh: a consumer written the way a data engineer would write one without
Playlog — confluent-kafka, fastavro (or the standard json module, for eventsim's JSON) and the duckdb
package, batching sensibly (50,000 rows per batch, via pyarrow tables, one DuckDB transaction per batch) —
on the same topics and data. Commits Kafka offsets after each batch (at-least-once).

Usage: baseline_consumer.py BROKERS DUCKDB_PATH EXPECTED_ROWS [--json]
Prints one line: rows, seconds, rows/s, peak RSS in MiB.
"""
import json
import resource
import sys
import time
from pathlib import Path

import duckdb
import fastavro
import pyarrow as pa
from confluent_kafka import Consumer

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["listen_events", "page_view_events", "auth_events", "status_change_events"]
BATCH = 50_000


ARROW = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(), "boolean": pa.bool_()}


def arrow_type(avro):
    """The Arrow type of an Avro field type: nullable unions as their one type, timestamps as their millis."""
    if isinstance(avro, list):
        avro = next(t for t in avro if t != "null")
    if isinstance(avro, dict):
        avro = avro["type"]
    return ARROW[avro]


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def main():
    brokers, db_path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    as_json = "--json" in sys.argv[4:]
    schemas, columns = {}, {}
    for topic in TOPICS:
        parsed = fastavro.parse_schema(json.loads((ROOT / "schemas/avro" / f"{topic}.avsc").read_text()))
        schemas[topic] = parsed
        columns[topic] = [f["name"] for f in parsed["fields"]]
    # JSON keeps each value's own type (an explicit Arrow schema from the Avro field types, typed tables);
    # the Avro baseline stores every value as text, as it always has.
    arrow_schemas = {
        topic: pa.schema([(snake(f["name"]), arrow_type(f["type"])) for f in schemas[topic]["fields"]]
                         + [("_partition", pa.int32()), ("_offset", pa.int64())])
        for topic in TOPICS
    }
    con = duckdb.connect(db_path)
    for topic in TOPICS:
        if as_json:
            con.register("empty", arrow_schemas[topic].empty_table())
            con.execute(f"CREATE TABLE IF NOT EXISTS {topic} AS SELECT * FROM empty")
            con.unregister("empty")
        else:
            cols = ", ".join(f"{snake(c)} {'VARCHAR'}" for c in columns[topic])
            con.execute(f"CREATE TABLE IF NOT EXISTS {topic} ({cols}, _partition INTEGER, _offset BIGINT)")
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "baseline", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe(TOPICS)
    pending = {t: [] for t in TOPICS}
    done, started = 0, None
    import io

    def flush():
        nonlocal done
        con.execute("BEGIN")
        landed = 0
        for topic, rows in pending.items():
            if rows:
                table = pa.Table.from_pylist(rows, schema=arrow_schemas[topic] if as_json else None)
                con.register("batch", table)
                con.execute(f"INSERT INTO {topic} BY NAME SELECT * FROM batch")
                con.unregister("batch")
                landed += len(rows)
                rows.clear()
        con.execute("COMMIT")
        done += landed
        consumer.commit(asynchronous=True)

    while done < expected:
        messages = consumer.consume(num_messages=10_000, timeout=1.0)
        if messages and started is None:
            started = time.time()
        for m in messages:
            if m.error():
                continue
            topic = m.topic()
            if as_json:
                record = json.loads(m.value())
            else:
                # Avro single-object encoding: skip the 2-byte marker and 8-byte fingerprint.
                record = fastavro.schemaless_reader(io.BytesIO(m.value()[10:]), schemas[topic])
            # Every schema column, NULL where the record has none (eventsim's JSON omits some for guests).
            if as_json:
                row = {snake(c): record.get(c) for c in columns[topic]}
            else:
                row = {}
                for c in columns[topic]:
                    v = record.get(c)
                    row[snake(c)] = None if v is None else str(v)
            row["_partition"], row["_offset"] = m.partition(), m.offset()
            pending[topic].append(row)
        if sum(len(r) for r in pending.values()) >= BATCH or not messages:
            flush()
    flush()
    seconds = time.time() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kind = "confluent-kafka + json + pyarrow + duckdb" if as_json else "confluent-kafka + fastavro + pyarrow + duckdb"
    print(f"baseline ({kind}): {done} rows in {seconds:.2f} s = {done / seconds:.0f} rows/s, peak RSS {rss:.0f} MiB")
    consumer.close()


if __name__ == "__main__":
    main()
