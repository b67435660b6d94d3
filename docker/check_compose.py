#!/usr/bin/env python3
"""Checks docker/compose.yaml without a Docker daemon (CI has none).

1. Parses the file as YAML, resolving anchors and merge keys (`<<: *alfred`) the way
   Compose does, and interpolates `${VAR:-default}` with an empty environment (CI must
   not depend on someone's .env).
2. Validates the result against the official Compose Specification JSON schema, vendored
   in docker/compose-spec/ (see its README for the commit it came from).
3. Checks what issue 11 asks of the deployment: every role and service is there, each
   role runs its own command, serves /readyz and /metrics on the metrics port that only
   the compose network sees, uses /readyz as its health check and mounts the flows
   read-only; only the webhook publishes a port, and no role waits for Ollama.
4. Checks that observability/prometheus.yml scrapes every role on that port and sends
   alerts to the Alertmanager service.

Usage: python3 docker/check_compose.py [COMPOSE_FILE] [--self-test]
`--self-test` also breaks the file in memory in several ways and fails unless the check
catches every one (so the check itself is known to fail when it should).
Needs PyYAML and jsonschema (Debian: python3-yaml python3-jsonschema; .ci/run installs them).
"""

import copy
import json
import os
import re
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCHEMA = os.path.join(HERE, "compose-spec", "compose-spec.json")
PROMETHEUS = os.path.join(ROOT, "observability", "prometheus.yml")

# Each Alfred role and the `alfred` subcommand it runs.
ROLES = {"webhook": "webhook", "worker": "worker", "sender": "sender", "scheduler": "scheduler"}
# Everything else the stack must run.
SERVICES = [
    "migrate",
    "postgres",
    "redis",
    "ollama",
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "alloy",
]
METRICS_LISTEN = "0.0.0.0:9091"
METRICS_PORT = "9091"
WEBHOOK_PORT = "8080"

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\})")


def interpolate(value, env, errors, where):
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR:+alt}`, `$$`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, errors, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, errors, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def one(m):
        if m.group(1):
            return "$"
        name, op, arg = m.group(2), m.group(3), m.group(4) or ""
        val = env.get(name)
        unset_or_empty = val is None or (op is not None and op.startswith(":") and val == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else val
        if op in (":?", "?"):
            if unset_or_empty:
                errors.append(f"{where}: required variable {name} is not set ({arg})")
                return ""
            return val
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return val or ""

    return _VAR.sub(one, value)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def schema_errors(doc, schema):
    validator = jsonschema.Draft7Validator(schema)
    out = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        out.append(f"schema: {path}: {e.message}")
    return out


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def published_ports(service):
    """The container ports a service publishes, as strings."""
    out = []
    for p in as_list(service.get("ports")):
        if isinstance(p, dict):
            out.append(str(p.get("target")))
        else:
            spec = str(p).split("/")[0]
            out.append(spec.rsplit(":", 1)[-1])
    return out


def mounts(service):
    """(source, target, read_only) of each volume."""
    out = []
    for v in as_list(service.get("volumes")):
        if isinstance(v, dict):
            out.append((str(v.get("source")), str(v.get("target")), bool(v.get("read_only"))))
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                out.append(("", parts[0], False))
            else:
                opts = parts[2].split(",") if len(parts) > 2 else []
                out.append((parts[0], parts[1], "ro" in opts))
    return out


def depends_on(service):
    d = service.get("depends_on") or {}
    return list(d) if isinstance(d, (dict, list)) else []


def compose_errors(doc):
    """What issue 11 requires of the stack, beyond the schema."""
    errors = []
    services = doc.get("services") or {}
    for name in list(ROLES) + SERVICES:
        if name not in services:
            errors.append(f"service `{name}` is missing")
    for name, command in ROLES.items():
        s = services.get(name)
        if not isinstance(s, dict):
            continue
        if as_list(s.get("command")) != [command]:
            errors.append(f"{name}: command must be [\"{command}\"], is {s.get('command')!r}")
        env = env_of(s)
        if env.get("ALFRED_METRICS_LISTEN") != METRICS_LISTEN:
            errors.append(f"{name}: ALFRED_METRICS_LISTEN must be {METRICS_LISTEN} (Prometheus scrapes it)")
        for var in ("DATABASE_URL", "REDIS_URL", "OLLAMA_URL", "OLLAMA_MODEL"):
            if not env.get(var):
                errors.append(f"{name}: {var} is not set")
        test = " ".join(map(str, as_list((s.get("healthcheck") or {}).get("test"))))
        if f":{METRICS_PORT}/readyz" not in test or (s.get("healthcheck") or {}).get("disable"):
            errors.append(f"{name}: the health check must call /readyz on port {METRICS_PORT}")
        if not any(t == env.get("ALFRED_FLOWS", "/app/flows") and ro for _, t, ro in mounts(s)):
            errors.append(f"{name}: the flows directory must be mounted read-only at ALFRED_FLOWS")
        ports = published_ports(s)
        if METRICS_PORT in ports:
            errors.append(f"{name}: publishes the metrics port {METRICS_PORT}; /metrics must stay internal")
        if name == "webhook":
            if ports != [WEBHOOK_PORT]:
                errors.append(f"webhook: must publish exactly container port {WEBHOOK_PORT}, publishes {ports}")
            if env.get("ALFRED_LISTEN", "").rsplit(":", 1)[-1] != WEBHOOK_PORT:
                errors.append(f"webhook: ALFRED_LISTEN must listen on port {WEBHOOK_PORT}")
        elif ports:
            errors.append(f"{name}: publishes {ports}; only the webhook has a public port")
    for name, s in services.items():
        if isinstance(s, dict) and "ollama" in depends_on(s):
            errors.append(f"{name}: depends on ollama; Alfred must start without it")
    ollama = services.get("ollama") or {}
    volumes = doc.get("volumes") or {}
    if not any(src in volumes and t == "/root/.ollama" for src, t, _ in mounts(ollama)):
        errors.append("ollama: its models need a named volume at /root/.ollama")
    return errors


def prometheus_errors(prom):
    errors = []
    jobs = {j.get("job_name"): j for j in prom.get("scrape_configs") or []}
    for role in ROLES:
        job = jobs.get(f"alfred-{role}")
        if job is None:
            errors.append(f"prometheus.yml: no scrape job alfred-{role}")
            continue
        text = json.dumps(job)
        if f'"{role}' not in text or METRICS_PORT not in text:
            errors.append(f"prometheus.yml: alfred-{role} must scrape {role} on port {METRICS_PORT}")
    targets = json.dumps((prom.get("alerting") or {}).get("alertmanagers") or [])
    if "alertmanager:9093" not in targets:
        errors.append("prometheus.yml: alerting must send to alertmanager:9093")
    return errors


def check(raw, schema, prom):
    errors = []
    doc = interpolate(raw, {}, errors, "compose")
    if not isinstance(doc, dict):
        return ["compose file is not a mapping"]
    errors += schema_errors(doc, schema)
    errors += compose_errors(doc)
    errors += prometheus_errors(prom)
    return errors


def self_test(raw, schema, prom):
    """Each mutation must make the check fail; returns what it missed."""

    def mutated(fn):
        doc = copy.deepcopy(raw)
        fn(doc)
        return doc

    s = lambda doc: doc["services"]  # noqa: E731
    cases = {
        "unknown service key": lambda d: s(d)["worker"].update({"comand": ["worker"]}),
        "wrong type": lambda d: s(d)["redis"].update({"ports": "6379"}),
        "unknown top-level key": lambda d: d.update({"service": {}}),
        "no scheduler": lambda d: s(d).pop("scheduler"),
        "no alertmanager": lambda d: s(d).pop("alertmanager"),
        "metrics published": lambda d: s(d)["worker"].update({"ports": ["9091:9091"]}),
        "health on /healthz": lambda d: s(d)["sender"].update(
            {"healthcheck": {"test": ["CMD", "curl", "-f", "http://127.0.0.1:9091/healthz"]}}
        ),
        "flows writable": lambda d: s(d)["scheduler"].update({"volumes": ["../flows:/app/flows"]}),
        "waits for ollama": lambda d: s(d)["worker"].update({"depends_on": ["ollama"]}),
        "no metrics listener": lambda d: s(d)["webhook"]["environment"].pop("ALFRED_METRICS_LISTEN"),
    }
    missed = []
    for label, fn in cases.items():
        if not check(mutated(fn), schema, prom):
            missed.append(label)
    broken_prom = copy.deepcopy(prom)
    broken_prom.pop("alerting", None)
    if not check(raw, schema, broken_prom):
        missed.append("prometheus.yml without alerting")
    return len(cases) + 1, missed


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    path = args[0] if args else os.path.join(HERE, "compose.yaml")
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    try:
        raw = load(path)
    except yaml.YAMLError as e:
        print(f"{path}: not valid YAML: {e}", file=sys.stderr)
        return 1
    prom = load(PROMETHEUS)
    errors = check(raw, schema, prom)
    for e in errors:
        print(f"{path}: {e}", file=sys.stderr)
    if errors:
        print(f"{path}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    services = sorted((raw.get("services") or {}).keys())
    print(f"{path}: valid against the Compose Specification; services: {', '.join(services)}")
    if "--self-test" in argv:
        n, missed = self_test(raw, schema, prom)
        if missed:
            print(f"self-test: the check missed: {', '.join(missed)}", file=sys.stderr)
            return 1
        print(f"self-test: all {n} broken variants were rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
