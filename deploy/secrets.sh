#!/bin/sh
# Writes a copy of deploy/ into DIR (which must not exist yet) with every
# "change-me-…" placeholder replaced by a fresh random secret (24 random
# bytes, hex), the same secret wherever one placeholder recurs, so the
# NATS passwords, Centrifugo's keys and the settings of bridge and auth
# still match. Files are readable by you only.
#
#   sh deploy/secrets.sh /srv/instant-deploy
#   docker compose -f /srv/instant-deploy/docker-compose.yaml up --build
#
# instant refuses to start while a secret setting holds a placeholder;
# this is the quickest way past that. For Kubernetes, apply
# DIR/kubernetes/secret.example.yaml (kept out of the kustomization) or
# feed its values to your secret tooling. Keep DIR out of git.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
dst=${1:?usage: secrets.sh DIR}
if [ -e "$dst" ]; then
	echo "secrets.sh: $dst exists; choose a new folder" >&2
	exit 2
fi
umask 077
mkdir -p "$dst"
for f in nats centrifugo systemd kubernetes monitoring docker-compose.yaml; do
	cp -R "$src/$f" "$dst/"
done
# The image is built from the repository: point the build context there.
sed "s|context: \.\.\$|context: $(dirname "$src")|" "$dst/docker-compose.yaml" >"$dst/docker-compose.yaml.tmp"
mv "$dst/docker-compose.yaml.tmp" "$dst/docker-compose.yaml"

# Longest first, so no placeholder is replaced inside a longer one.
grep -rhoE 'change-me-[a-z0-9-]*[a-z0-9]' "$dst" | sort -u | awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2 |
	while read -r placeholder; do
		secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
		grep -rlF "$placeholder" "$dst" | while read -r f; do
			sed "s/$placeholder/$secret/g" "$f" >"$f.tmp"
			mv "$f.tmp" "$f"
		done
	done
if grep -rqE 'change-me-[a-z0-9]' "$dst"; then
	echo "secrets.sh: placeholders left in $dst:" >&2
	grep -rnE 'change-me-[a-z0-9]' "$dst" >&2
	exit 1
fi
echo "wrote $dst with fresh secrets"
