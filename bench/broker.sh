# Sourced by the benchmarks: a free loopback port, and a tansu broker (in-memory) on one.
#   start_broker: (re)starts it, logging to "$work/broker-PORT.log"; sets $broker (its pid) and $brokers.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
broker=""
start_broker() {
  [ -n "$broker" ] && { kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; }
  port=$(free_port)
  tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$work/broker-$port.log" 2>&1 &
  broker=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  brokers="127.0.0.1:$port"
}
