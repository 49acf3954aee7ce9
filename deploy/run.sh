#!/usr/bin/env bash
# The run command (README): installs what is missing, builds in release mode, starts a
# redis-server on loopback when none answers, creates development certificates once, and runs
# `rtpstream serve` with mutual TLS. Extra arguments are passed to `rtpstream serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash deploy/deps.sh build
swift build -c release --product rtpstream
bin="$(swift build -c release --show-bin-path)/rtpstream"

data="${RTPSTREAM_DATA_DIR:-./data}"
certs="${RTPSTREAM_DEV_CERTS:-./dev-certs}"
mkdir -p "$data/redis"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "run: starting redis-server on 127.0.0.1:6379 (data in $data/redis)" >&2
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --dir "$data/redis" \
    --save "" --appendonly no --logfile "$(cd "$data/redis" && pwd)/redis.log"
fi

if [ ! -f "$certs/ca.pem" ]; then
  echo "run: creating development certificates in $certs (PSPs 12345678 and 87654321)" >&2
  "$bin" certs --out "$certs" --ispb 12345678 --ispb 87654321 >/dev/null
fi

cat >&2 <<TXT
run: try it (PSP 12345678 sends a generated pacs.008 to PSP 87654321, which pulls it):
  $bin send --url https://127.0.0.1:8443 --ca $certs/ca.pem \\
      --cert $certs/client-12345678.pem --key $certs/client-12345678-key.pem \\
      --generate 1 --sender 12345678 --recipient 87654321
  curl --cacert $certs/ca.pem --cert $certs/client-87654321.pem --key $certs/client-87654321-key.pem \\
      -i https://localhost:8443/api/v1/out/87654321/stream/start
TXT

exec "$bin" serve --data-dir "$data" \
  --tls-cert "$certs/server.pem" --tls-key "$certs/server-key.pem" \
  --tls-client-ca "$certs/ca.pem" --tls-crl "$certs/crl.pem" "$@"
