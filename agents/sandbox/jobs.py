"""The healer's side of the sandbox: the launcher's resource on CDE, and jobs that run through it.

A sandboxed job is a copy of a job definition whose `spark.file` is the launcher (mounted from the
bundle's resource under `healer-sandbox/`) and whose conf tells the launcher which application to run
and where its outputs go (`spark.healer.sandbox.*`, documented in `launcher.py`). The application's
own file, args, mounts and settings are unchanged, so the code that runs in the sandbox is byte for
byte the code that is deployed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from agents.sandbox.bundle import LAUNCHER, sandbox_bundle
from agents.sandbox.report import SandboxOutput
from cde_client import CdeClient, Conflict, NotFound

MOUNT_PREFIX = "healer-sandbox"  # the bundle's dirPrefix in a sandboxed job
CONF_PREFIX = "spark.healer.sandbox."


def sandbox_database(prefix: str, run_id: int, attempt: int, candidate: int = 1) -> str:
    """The attempt's sandbox database: named after the incident's failed run, the attempt and (after
    the first) the candidate, so the launcher can drop the incident's earlier ones
    (`<prefix>_<run>_<n>`, `<prefix>_<run>_<n>_c<k>`)."""
    return f"{prefix}_{run_id}_{attempt}" + (f"_c{candidate}" if candidate > 1 else "")


def ensure_bundle(client: CdeClient) -> str:
    """The launcher's files resource (named by its content's hash), created once per CDE."""
    bundle = sandbox_bundle()
    try:
        present = {f.path for f in client.get_resource(bundle.name, include_files=True).files}
    except NotFound:
        try:
            client.create_resource(bundle.name, type="files")
        except Conflict:
            pass  # another healer made it a moment ago
        present = set()
    for path, data in sorted(bundle.files.items()):
        if path not in present:  # uploads are idempotent; a half-made bundle is completed
            client.upload_file(bundle.name, path, data)
    return bundle.name


def outputs_conf(outputs: Iterable[SandboxOutput]) -> str:
    seen = sorted({(o.kind, o.name) for o in outputs})
    return json.dumps([{"kind": kind, "name": name} for kind, name in seen], separators=(",", ":"))


def sandbox_conf(*, database: str, sample: str, location: str | None, outputs: str = "[]", mode: str = "preflight",
                 clone: bool = True, stats: bool = True) -> dict[str, str]:
    conf = {"mode": mode, "database": database, "sample": sample, "outputs": outputs,
            "clone": "true" if clone else "false", "stats": "true" if stats else "false"}
    if location:
        conf["location"] = location
    return {CONF_PREFIX + key: value for key, value in conf.items()}


def sandboxed_spec(spec: dict[str, Any], bundle: str, conf: dict[str, str]) -> dict[str, Any]:
    """`spec` (a job definition) run through the launcher: its application becomes the launcher's
    `app`, the bundle is mounted beside its own resources."""
    result = copy.deepcopy(spec)
    spark = result.setdefault("spark", {})
    app = str(spark.get("file") or "")
    spark["file"] = f"/app/mount/{MOUNT_PREFIX}/{LAUNCHER}"
    spark["conf"] = {**(spark.get("conf") or {}), **conf, CONF_PREFIX + "app": app}
    result["mounts"] = [m for m in result.get("mounts") or [] if m.get("resourceName") != bundle] + [
        {"resourceName": bundle, "dirPrefix": MOUNT_PREFIX}]
    return result
