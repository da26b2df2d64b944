#!/usr/bin/env bash
# Creates every Qiyue topic and its dead-letter topic with an explicit partition count and
# replication factor, before any service starts. Safe to run again: existing topics are kept
# as they are (partitions are never changed here: adding some moves keys between partitions,
# which would break the per-contract order of events already in flight).
#
# The list must match shared.events.ALL_TOPICS and their `.dlq` (tests/unit/test_deploy_manifests.py).
#
#   KAFKA_BOOTSTRAP      brokers                          (default kafka:9092)
#   PARTITIONS           partitions per topic: the most consumer replicas that get work (default 6)
#   REPLICATION_FACTOR   copies of each partition         (default 1; 3 on a real cluster)
#   MIN_INSYNC_REPLICAS  copies an acks=all write needs   (default 1; 2 with 3 copies)
#   TOPIC_PREFIX         the services' QIYUE_TOPIC_PREFIX  (default empty)
#   KAFKA_TOPICS_CMD     the kafka-topics tool            (default /opt/kafka/bin/kafka-topics.sh)
set -euo pipefail

bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
partitions=${PARTITIONS:-6}
replication=${REPLICATION_FACTOR:-1}
min_isr=${MIN_INSYNC_REPLICAS:-1}
prefix=${TOPIC_PREFIX:-}
kafka_topics=${KAFKA_TOPICS_CMD:-/opt/kafka/bin/kafka-topics.sh}

topics=(
  contracts.events      contracts.events.dlq
  payments.events       payments.events.dlq
  sla.events            sla.events.dlq
  notifications.events  notifications.events.dlq
  sla.ingest            sla.ingest.dlq
)

for topic in "${topics[@]}"; do
  "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$prefix$topic" --partitions "$partitions" --replication-factor "$replication" \
    --config "min.insync.replicas=$min_isr"
done
echo "qiyue topics ready: ${#topics[@]} topics, $partitions partitions, replication $replication"
