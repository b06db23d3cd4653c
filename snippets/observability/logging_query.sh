# Finished requests by status (health checks left out), then every line of one request
python3 - "${COLLECTED:-/tmp/recipe-logs/collected.jsonl}" "${REQUEST_ID:-demo-404}" <<'PY'
import collections, json, sys

records = [json.loads(line) for line in open(sys.argv[1])]
finished = [r for r in records if r["event"] == "request finished" and r["path"] != "/health"]
for status, count in sorted(collections.Counter(r["status"] for r in finished).items()):
    print(f"status {status}: {count}")
print(f"request {sys.argv[2]}:")
for r in records:
    if r.get("request_id") == sys.argv[2]:
        print(" ", r["timestamp"], r["level"], r["event"], r["path"], r.get("status", ""))
PY
