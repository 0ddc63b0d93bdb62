#!/bin/sh
# Restores the KV buckets backup.sh saved in DIR into a NATS system where
# they do not exist (a fresh cluster, or after `nats kv rm` of a broken
# bucket), with the nats CLI as the admin user:
#
#   NATS_URL=nats://admin:PASSWORD@nats-1:4222 INSTANT_REPLICAS=3 sh restore.sh /backup/2026-01-31
#
# INSTANT_REPLICAS, when set, overrides the replica count the buckets had
# (a backup of a 3-node cluster restored on one server needs 1). Then
# restart auth (bridge reads the channels live) and check with
# `instant channels list` and `instant users list`.
set -eu
dir=${1:?usage: restore.sh DIR}
for bucket in instant_channels instant_users; do
	nats backup restore stream "$dir/KV_$bucket" --no-progress ${INSTANT_REPLICAS:+--replicas "$INSTANT_REPLICAS"}
done
echo "restored instant_channels and instant_users from $dir"
