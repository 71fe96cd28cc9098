#!/bin/sh
# Renders raftkv-check's web page for a 30,000-operation history that fails in the middle, in
# a real headless browser, and checks what the browser loaded: the failing key is drawn, around
# the read that fails, with labelled bars and a time axis with a unit, and the page is small.
# Leaves the page, the browser's DOM and a screenshot in OUT_DIR for a person to look at.
#
#   checker/scripts/check-report-in-browser.sh [OUT_DIR]     (default: target/report-check)
#
# Needs chromium (Debian: apt-get install -y chromium); skips with a message without it.
# Exit status: 0 checked (or skipped), 1 a check failed.
set -eu

cd "$(dirname "$0")/../.."
out=${1:-target/report-check}
browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser=$candidate
        break
    fi
done
if [ -z "$browser" ]; then
    echo "skipping the browser check: chromium is not installed (apt-get install -y chromium)"
    exit 0
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
cargo build --release --quiet -p raftkv-sim -p raftkv-checker
bin=${CARGO_TARGET_DIR:-target}/release
"$bin/raftkv-sim" run --seed 1 --ops 30000 --faults net,crash \
    --history "$out/history.jsonl" >/dev/null
# The get in the middle of the history now reads a value nobody wrote.
awk -v middle="$(($(wc -l <"$out/history.jsonl") / 2))" '
    !done && NR >= middle && /"kind":"get"/ && /"output":/ {
        sub(/"output":"[^"]*"/, "\"output\":\"bogus\""); done = 1
    }
    { print }' "$out/history.jsonl" >"$out/failing.jsonl"

status=0
"$bin/raftkv-check" --html "$out/page.html" "$out/failing.jsonl" >"$out/verdict.txt" ||
    status=$?
if [ "$status" -ne 1 ]; then
    echo "FAIL: raftkv-check exited $status, not 1 (not linearizable):"
    cat "$out/verdict.txt"
    exit 1
fi

flags="--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run"
# shellcheck disable=SC2086 # the flags are words
"$browser" $flags --dump-dom "file://$out/page.html" >"$out/dom.html" 2>/dev/null
# shellcheck disable=SC2086
"$browser" $flags --window-size=1400,1000 --screenshot="$out/report.png" \
    "file://$out/page.html" >/dev/null 2>&1

failed=0
expect() {
    if ! grep -q -- "$1" "$out/dom.html"; then
        echo "FAIL: the browser's page lacks $2 ($1)"
        failed=1
    fi
}
expect '<svg ' 'a drawing'
expect 'class="op stuck' 'a bar marked as the one that cannot come next'
expect '>get bogus</text>' 'the failing read, labelled'
expect 'Time in ms after the first call drawn' 'a time axis with its unit'
expect 'Drawn: ' 'a note on which operations are drawn'
bytes=$(wc -c <"$out/page.html")
if [ "$bytes" -gt 1000000 ]; then
    echo "FAIL: the page weighs $bytes bytes, more than 1,000,000"
    failed=1
fi
if [ ! -s "$out/report.png" ]; then
    echo "FAIL: the browser wrote no screenshot"
    failed=1
fi
if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "ok: $bytes bytes; the browser drew the failing key; see $out/report.png"
