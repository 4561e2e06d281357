# The BigQuery emulator for the compose stack's `bigquery` profile: bqemulator from PyPI, the version the
# tests run against, launched through scripts/start-bqemulator.py (which skips its spatial-extension
# download, so it starts offline).
FROM python:3.11-slim-bookworm
RUN pip install --no-cache-dir bqemulator==1.4.0 duckdb==2.0.0 numpy==2.3.* \
    && useradd --system --uid 10001 --create-home bq \
    && mkdir -p /home/bq/data \
    && chown bq /home/bq/data
COPY scripts/start-bqemulator.py /opt/bqemulator/start-bqemulator.py
USER 10001
EXPOSE 9050
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 9050), 2)"]
ENTRYPOINT ["python", "/opt/bqemulator/start-bqemulator.py", "start", "--rest-host", "0.0.0.0", "--rest-port", "9050", "--grpc-host", "0.0.0.0", "--grpc-port", "9060", "--project", "playlog", "--persistent", "--data-dir", "/home/bq/data"]
