#!/usr/bin/env bash
# The run command (README): installs what is missing, builds in release mode, starts a
# redis-server on loopback when none answers, and runs `rtpstream serve`.
# Extra arguments are passed to `rtpstream serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash deploy/deps.sh build
swift build -c release --product rtpstream
bin="$(swift build -c release --show-bin-path)/rtpstream"

data="${RTPSTREAM_DATA_DIR:-./data}"
mkdir -p "$data/redis"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "run: starting redis-server on 127.0.0.1:6379 (data in $data/redis)" >&2
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --dir "$data/redis" \
    --save "" --appendonly no --logfile "$PWD/$data/redis/redis.log"
fi

exec "$bin" serve --insecure-plaintext --data-dir "$data" "$@"
