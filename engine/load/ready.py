#!/usr/bin/env python3
"""Time from exec to the first `GET /readyz` 200, repeated; prints median and p90.

    python3 engine/load/ready.py --runs 20 --url http://127.0.0.1:18080/readyz -- alfred serve

The environment (DATABASE_URL, REDIS_URL, …) is passed through unchanged, and the
database must already be migrated: this measures a restart, not a first install. Each
run polls every millisecond, then stops the process with SIGTERM and waits for it.
"""

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit


def ready(host: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=0.5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--url", default="http://127.0.0.1:18080/readyz")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one start")
    ap.add_argument("--log", default=os.devnull, help="where the service's output goes")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command to start")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        sys.exit("error: give the command after --")
    u = urlsplit(args.url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path or "/readyz"
    if ready(host, port, path):
        sys.exit(f"error: something already answers {args.url}; stop it first")
    times = []
    with open(args.log, "ab") as log:
        for i in range(args.runs):
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=log, stderr=log)
            try:
                while not ready(host, port, path):
                    if proc.poll() is not None:
                        sys.exit(f"error: run {i + 1}: the service exited with {proc.returncode} (see {args.log})")
                    if time.monotonic() - t0 > args.timeout:
                        sys.exit(f"error: run {i + 1}: not ready after {args.timeout} s")
                    time.sleep(0.001)
                times.append((time.monotonic() - t0) * 1000)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    print(f"runs={len(times)} median_ms={statistics.median(times):.1f} p90_ms={p90:.1f} "
          f"min_ms={times[0]:.1f} max_ms={times[-1]:.1f}")


if __name__ == "__main__":
    main()
