"""The floor a tap is measured against: plain requests + json, Link next, one RECORD line per record.

    python benchmarks/raw_floor.py API_URL TOKEN [PAGE_SIZE] > /dev/null

It does what any Noko client must (fetch, decode, re-encode, write) and nothing a tap adds
(schemas, state, validation), for the same four streams.
"""

from __future__ import annotations

import json
import sys

import requests


def main() -> None:
    api_url, token = sys.argv[1], sys.argv[2]
    page_size = sys.argv[3] if len(sys.argv) > 3 else "1000"
    session = requests.Session()
    session.headers.update({"X-NokoToken": token, "User-Agent": "raw-floor/1.0"})
    out = sys.stdout
    for stream in ("entries", "projects", "tags", "users"):
        response = session.get(f"{api_url}/{stream}", params={"per_page": page_size}, timeout=60)
        while True:
            response.raise_for_status()
            for record in response.json():
                out.write(json.dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
            if "next" not in response.links:
                break
            response = session.get(response.links["next"]["url"], timeout=60)
    out.flush()


if __name__ == "__main__":
    main()
