#!/bin/sh
# Publish to instant from the shell: the nats CLI on the publish and
# request subjects, then `instant publish`. Both commands must be on PATH
# (make build tools puts them in bin/).
#
#   examples/shell/publish.sh [CHANNEL [MESSAGE]]
#
# NATS_URL names the server (default nats://127.0.0.1:4222). The exit
# status is 1 when NATS is unreachable or the bridge refuses an envelope.
set -eu

channel=${1:-public}
message=${2:-Hello from the shell}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export NATS_URL

# Fire-and-forget, waiting for JetStream's storage acknowledgement: a body
# that is not JSON becomes the message.
nats pub --jetstream --no-templates "instant.publish.$channel" "$message"

# A JSON envelope on the request subject: the reply is the bridge's outcome.
reply=$(nats req --raw --no-templates "instant.request.$channel" \
	'{"data":{"from":"shell"},"event_class":"info","bucket":"examples"}')
echo "$reply"
case $reply in
*'"ok":true'*) ;;
*)
	echo "error: the bridge refused the envelope" >&2
	exit 1
	;;
esac

# instant publish reads the same settings; --wait prints the outcome and
# exits 1 when the envelope is refused.
instant publish "$channel" "$message" --event-class important --bucket examples --wait
