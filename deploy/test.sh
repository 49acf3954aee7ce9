#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, runs every test.
# Tests start their own redis-server on a free loopback port and make their own certificates.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bash deploy/deps.sh build
swift build --build-tests
swift test --skip-build "$@"
# The fuzz harnesses' seed corpora, replayed by the same code the fuzzers run.
for f in Tests/Fuzz/*/corpus; do
  f="$(dirname "$f")"
  name="fuzz-$(basename "$f" | tr 'A-Z' 'a-z')"
  "$(swift build --show-bin-path)/$name" "$f/corpus"
done
