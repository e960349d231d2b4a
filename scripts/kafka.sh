#!/usr/bin/env bash
# Fetches (once), formats (once) and starts a single-node Apache Kafka in KRaft mode
# on 127.0.0.1:9092. Does nothing when KAFKA_BOOTSTRAP_SERVERS points elsewhere or a
# broker already answers. Usage: scripts/kafka.sh start|stop|fetch
# KAFKA_PORT and KAFKA_DATA_DIR run a second, private broker (the controller on the
# next port), e.g. for the end-to-end test, which must not share topics with others.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KAFKA_HOME="$CACHE/kafka"
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=$((PORT + 1))
if [ -n "${KAFKA_DATA_DIR:-}" ]; then
  DATA=$KAFKA_DATA_DIR; PIDFILE="$DATA/kafka.pid"; LOG="$DATA/kafka.log"
else
  DATA="$RUN/kafka"; PIDFILE="$RUN/kafka.pid"; LOG="$LOGS/kafka.log"
fi
BOOTSTRAP=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$PORT}
CLUSTER_ID=bin-local-cluster-0001

fetch() {
  [ -f "$KAFKA_HOME/libs/.complete" ] && return 0
  need java "install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)"
  need mvn "install Maven (Debian: apt-get install maven)"
  say "fetching the Kafka broker's jars from Maven Central (once)"
  rm -rf "$KAFKA_HOME/libs"
  mvn -q -B -f "$ROOT/infra/kafka/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_HOME/libs" >"$LOGS/kafka-fetch.log" 2>&1 \
    || { tail -n 20 "$LOGS/kafka-fetch.log" >&2; die "Maven could not fetch Kafka"; }
  touch "$KAFKA_HOME/libs/.complete"
}

configure() {
  mkdir -p "$DATA/logs"
  cat >"$DATA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.cleaner.backoff.ms=5000
PROPS
}

start() {
  if [ "$BOOTSTRAP" != "127.0.0.1:$PORT" ] && [ "$BOOTSTRAP" != "localhost:$PORT" ]; then
    say "Kafka: using $BOOTSTRAP (KAFKA_BOOTSTRAP_SERVERS), starting none"; return 0
  fi
  if port_open 127.0.0.1 "$PORT"; then say "Kafka: already running on 127.0.0.1:$PORT"; return 0; fi
  fetch
  need java "install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)"
  configure
  local cp="$KAFKA_HOME/libs/*"
  if [ ! -f "$DATA/logs/meta.properties" ]; then
    java -cp "$cp" kafka.tools.StorageTool format -t "$CLUSTER_ID" \
      -c "$DATA/server.properties" >>"$LOG" 2>&1 || die "formatting Kafka storage failed; see $LOG"
  fi
  say "Kafka: starting on 127.0.0.1:$PORT (log: $LOG)"
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$cp" kafka.Kafka "$DATA/server.properties" >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  wait_port Kafka 127.0.0.1 "$PORT" 90 "$LOG"
}

stop() {
  if pid_alive "$PIDFILE"; then
    local pid; pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    say "Kafka: stopped"
  fi
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  fetch) fetch ;;
  *) die "usage: $0 start|stop|fetch" ;;
esac
