#!/bin/sh
# The plugin's test: build it, run it with the real host (`sluice` on PATH)
# over test/input.jsonl, and compare the output with test/expected.jsonl.
set -eu
cd "$(dirname "$0")"
sluice plugin build . >/dev/null
rm -f test/output.jsonl
sluice run test/job.toml --cache-dir target/cache
diff -u test/expected.jsonl test/output.jsonl
echo "ok: the output matches test/expected.jsonl"
