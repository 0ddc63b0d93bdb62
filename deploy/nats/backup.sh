#!/bin/sh
# Backs up the KV buckets of instant (the channel registry and the user
# store, password hashes included: keep the backup as private as the
# NATS admin password) into DIR/KV_instant_channels and
# DIR/KV_instant_users, with the nats CLI as the admin user:
#
#   NATS_URL=nats://admin:PASSWORD@nats-1:4222 sh backup.sh /backup/$(date +%F)
#
# The connection settings are the nats CLI's (NATS_URL, NATS_CA,
# NATS_CERT, NATS_KEY, NATS_CREDS, NATS_NKEY), the same as instant's.
# --check refuses a bucket that is not healthy. Restore with restore.sh.
set -eu
dir=${1:?usage: backup.sh DIR}
mkdir -p "$dir"
for bucket in instant_channels instant_users; do
	nats backup stream "KV_$bucket" "$dir/KV_$bucket" --check --no-progress
done
echo "backed up instant_channels and instant_users into $dir"
