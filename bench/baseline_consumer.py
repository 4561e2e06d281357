#!/usr/bin/env python3
"""The baseline for bench/consumer.sh: a consumer written the way a data engineer would write one without
Playlog — confluent-kafka, fastavro and the duckdb package, batching sensibly (50,000 rows per insert, via
a pyarrow table) — on the same topics and data. Commits Kafka offsets after each insert (at-least-once).

Usage: baseline_consumer.py BROKERS DUCKDB_PATH EXPECTED_ROWS
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


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def main():
    brokers, db_path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    schemas, columns = {}, {}
    for topic in TOPICS:
        parsed = fastavro.parse_schema(json.loads((ROOT / "schemas/avro" / f"{topic}.avsc").read_text()))
        schemas[topic] = parsed
        columns[topic] = [f["name"] for f in parsed["fields"]]
    con = duckdb.connect(db_path)
    for topic in TOPICS:
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
        for topic, rows in pending.items():
            if rows:
                table = pa.Table.from_pylist(rows)
                con.register("batch", table)
                con.execute(f"INSERT INTO {topic} SELECT * FROM batch")
                con.unregister("batch")
                done += len(rows)
                rows.clear()
        consumer.commit(asynchronous=True)

    while done < expected:
        messages = consumer.consume(num_messages=10_000, timeout=1.0)
        if messages and started is None:
            started = time.time()
        for m in messages:
            if m.error():
                continue
            topic = m.topic()
            # Avro single-object encoding: skip the 2-byte marker and 8-byte fingerprint.
            record = fastavro.schemaless_reader(io.BytesIO(m.value()[10:]), schemas[topic])
            row = {snake(k): (None if v is None else str(v)) for k, v in record.items()}
            row["_partition"], row["_offset"] = m.partition(), m.offset()
            pending[topic].append(row)
        if sum(len(r) for r in pending.values()) >= BATCH or not messages:
            flush()
    flush()
    seconds = time.time() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"baseline: {done} rows in {seconds:.2f} s = {done / seconds:.0f} rows/s, peak RSS {rss:.0f} MiB")
    consumer.close()


if __name__ == "__main__":
    main()
