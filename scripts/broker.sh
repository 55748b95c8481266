# Shared by scripts/test and scripts/bench-e2e (sourced, not run): install the nisshi broker
# if it is missing and start it on 127.0.0.1:$ALERTCTX_TEST_BROKER_PORT (default 19092) unless
# something listens there already. Exports ALERTCTX_TEST_BROKERS.

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
NISSHI_VERSION=0.8.1
BROKER_HOST=127.0.0.1
BROKER_PORT="${ALERTCTX_TEST_BROKER_PORT:-19092}"
export ALERTCTX_TEST_BROKERS="$BROKER_HOST:$BROKER_PORT"

# 1. The broker binary. nisshi's `rama` dependency declares Rust 1.96; it builds and runs on
#    1.95, hence --ignore-rust-version. `dynostore` gives it the in-memory storage engine.
if ! command -v nisshi >/dev/null 2>&1 || ! nisshi --version 2>/dev/null | grep -q "$NISSHI_VERSION"; then
  echo "broker: installing nisshi $NISSHI_VERSION (a Kafka-compatible broker; about 12 minutes on 2 cores)"
  cargo install nisshi --version "$NISSHI_VERSION" --locked --ignore-rust-version \
    --no-default-features --features dynostore
fi

# 2. The broker process, unless one already listens on the port.
port_open() { (exec 3<>"/dev/tcp/$BROKER_HOST/$BROKER_PORT") 2>/dev/null; }
if ! port_open; then
  mkdir -p target
  nisshi broker --listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
    --advertised-listener-url "tcp://$BROKER_HOST:$BROKER_PORT" \
    --storage-engine memory://nisshi/ >target/nisshi.log 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    port_open && break
    sleep 0.1
  done
  port_open || { echo "broker: the broker did not start; see target/nisshi.log" >&2; cat target/nisshi.log >&2; exit 1; }
  echo "broker: nisshi broker on $ALERTCTX_TEST_BROKERS (pid $broker_pid)"
else
  echo "broker: reusing the broker already listening on $ALERTCTX_TEST_BROKERS"
fi

