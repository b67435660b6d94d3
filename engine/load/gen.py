#!/usr/bin/env python3
"""Write N signed WhatsApp text webhooks for the load scripts.

Each output line is `<X-Hub-Signature-256 value> TAB <compact JSON body>`: wrk's Lua has no
HMAC, so the bodies are signed here, once, with the same secret the service gets in
META_APP_SECRET. Every body has its own wamid (so the worker never dedupes one away), a
sender taken from the household's members and a text that the shipped flows answer.

    python3 engine/load/gen.py --count 20000 --secret bench-secret --out /tmp/alfred-load/bodies.tsv
"""

import argparse
import hashlib
import hmac
import json
import re
import sys
import time
from pathlib import Path

# Few distinct items keep the shared shopping list (and so every `list` reply) small.
TEXTS = ["add bananas", "list", "add milk", "add eggs", "list", "add bread"]


def members(household: Path) -> list[str]:
    """WhatsApp ids (E.164 without '+') of the members in household.yaml.

    A regex instead of a YAML parser keeps this stdlib-only; phone lines are simple."""
    phones = re.findall(r'^\s*phone:\s*"?\+?(\d+)"?\s*$', household.read_text(), re.M)
    if not phones:
        sys.exit(f"error: no `phone:` lines in {household}")
    return phones


def body(wa_id: str, wamid: str, text: str, ts: int) -> bytes:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Load"}, "wa_id": wa_id}],
                    "messages": [{"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text",
                                  "text": {"body": text}}],
                },
            }],
        }],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, required=True, help="number of bodies")
    ap.add_argument("--secret", required=True, help="the META_APP_SECRET the service runs with")
    ap.add_argument("--out", type=Path, required=True, help="output file (TSV: signature, body)")
    ap.add_argument("--household", type=Path, default=Path(__file__).resolve().parents[2] / "flows/household.yaml")
    ap.add_argument("--run-id", default=str(int(time.time())), help="makes wamids unique across runs")
    args = ap.parse_args()
    if args.count < 1:
        sys.exit("error: --count must be at least 1")
    senders = members(args.household)
    # A current timestamp: the sender only replies with free text inside the 24-hour window.
    ts = int(time.time())
    key = args.secret.encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as f:
        for i in range(args.count):
            b = body(senders[i % len(senders)], f"wamid.LOAD{args.run_id}x{i}", TEXTS[(i // len(senders)) % len(TEXTS)], ts)
            sig = "sha256=" + hmac.new(key, b, hashlib.sha256).hexdigest()
            f.write(sig.encode() + b"\t" + b + b"\n")
    print(f"wrote {args.count} signed bodies from {len(senders)} members to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
