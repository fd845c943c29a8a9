"""Named CDE environments: the virtual clusters the healer watches, and where each one's fixes are proven.

One CDE, as before, needs nothing new: `JOBS_API_URL` and its credentials are the environment
`default`, watched, its fixes proven in itself. Several are named in `CDE_ENVIRONMENTS`, each with
variables of its own (NAME upper-cased)::

    CDE_ENVIRONMENTS=dev,prd
    CDE_DEV_JOBS_API_URL=https://<dev vc>/dex/api/v1        required, http(s)
    CDE_PRD_JOBS_API_URL=https://<prd vc>/dex/api/v1
    CDE_<NAME>_WORKLOAD_USER, CDE_<NAME>_WORKLOAD_PASSWORD    or CDE_<NAME>_TOKEN; unset: the
                                                             tenant-wide WORKLOAD_USER/_PASSWORD/CDE_TOKEN
    CDE_<NAME>_TOKEN_URL                                     the Knox token URL; unset: derived from the URL
    CDE_PRD_VERIFY_IN=dev                                    where prd's fixes are proven before promotion
                                                             (unset: in prd itself)
    CDE_WATCH=prd                                            the environments whose failures are healed
                                                             (unset: every one that is no other's VERIFY_IN)

`environments_from(values)` reads them from the loaded environment (`config.load_environment`) and
raises `ConfigError` with every problem at once: a bad or repeated name, a missing or non-http(s)
URL, no credentials, a role naming an environment that is not listed, a per-environment variable
whose NAME is not listed (a typo would otherwise be ignored), `JOBS_API_URL` beside
`CDE_ENVIRONMENTS` (which would it be?). Passwords and tokens never appear in reprs or messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlparse

from agents.errors import ConfigError

DEFAULT = "default"  # the one environment of today's single-CDE variables
LIST_VAR, WATCH_VAR = "CDE_ENVIRONMENTS", "CDE_WATCH"
NAME = re.compile(r"[a-z][a-z0-9_]{0,29}\Z")
# the variables of one environment: suffix → Environment field
OWN = {"JOBS_API_URL": "jobs_api_url", "WORKLOAD_USER": "workload_user", "WORKLOAD_PASSWORD": "workload_password",
       "TOKEN": "cde_token", "TOKEN_URL": "token_url", "VERIFY_IN": "verify_in"}
# what an environment's unset credentials fall back to: the single-CDE variables
SHARED = {"workload_user": "WORKLOAD_USER", "workload_password": "WORKLOAD_PASSWORD", "cde_token": "CDE_TOKEN"}
_OWN_VAR = re.compile(r"CDE_([A-Z][A-Z0-9_]*?)_(" + "|".join(sorted(OWN, key=len, reverse=True)) + r")\Z")


@dataclass(frozen=True)
class Environment:
    """One CDE virtual cluster, its credentials and its roles."""

    name: str
    jobs_api_url: str
    workload_user: str = ""
    workload_password: str = field(default="", repr=False)
    cde_token: str = field(default="", repr=False)
    token_url: str | None = None
    watched: bool = True
    verify_in: str = ""  # the environment where this one's fixes are proven; "" = itself

    @property
    def verifier(self) -> str:
        """The name of the environment where this one's fixes are proven."""
        return self.verify_in or self.name

    @property
    def promotes(self) -> bool:
        """Its fixes are proven elsewhere and promoted here."""
        return self.verifier != self.name


def environment_names(values: Mapping[str, str]) -> list[str]:
    """The names `CDE_ENVIRONMENTS` lists (lower-cased, in order), or [] when it is unset."""
    return [n.strip().lower() for n in values.get(LIST_VAR, "").split(",") if n.strip()]


def environments_from(values: Mapping[str, str]) -> tuple[Environment, ...]:
    """The environments the (loaded, stripped) variables describe; ConfigError lists every problem."""
    names = environment_names(values)
    if not names:
        return (_single(values),)
    problems: list[str] = []
    seen: set[str] = set()
    for name in names:
        if not NAME.match(name):
            problems.append(f"{LIST_VAR}: {name!r} is not an environment name (a letter, then letters, digits "
                            "or underscores, at most 30)")
        elif name in seen:
            problems.append(f"{LIST_VAR} names {name!r} twice")
        seen.add(name)
    names = [n for n in dict.fromkeys(names) if NAME.match(n)]
    if "JOBS_API_URL" in values:
        problems.append(f"JOBS_API_URL is set beside {LIST_VAR}: give each environment its "
                        "CDE_<NAME>_JOBS_API_URL instead")
    for key in sorted(values):
        found = _OWN_VAR.match(key)
        if found and found.group(1).lower() not in names:
            problems.append(f"{key} names no environment of {LIST_VAR} ({', '.join(names) or 'none'})")

    found_envs = []
    for name in names:
        own = {fld: values[f"CDE_{name.upper()}_{suffix}"] for suffix, fld in OWN.items()
               if f"CDE_{name.upper()}_{suffix}" in values}
        prefix = f"CDE_{name.upper()}_"
        url = own.get("jobs_api_url", "")
        if not url:
            problems.append(f"{prefix}JOBS_API_URL is not set (environment {name})")
        elif not _http_url(url):
            problems.append(f"{prefix}JOBS_API_URL must be an http(s) URL, got {url!r}")
        if own.get("token_url") and not _http_url(own["token_url"]):
            problems.append(f"{prefix}TOKEN_URL must be an http(s) URL, got {own['token_url']!r}")
        for fld, shared in SHARED.items():
            own.setdefault(fld, values.get(shared, ""))
        if not own["cde_token"] and not (own["workload_user"] and own["workload_password"]):
            problems.append(f"environment {name} has no credentials: set {prefix}WORKLOAD_USER and "
                            f"{prefix}WORKLOAD_PASSWORD, or {prefix}TOKEN (or the shared WORKLOAD_USER and "
                            "WORKLOAD_PASSWORD, or CDE_TOKEN)")
        verify_in = own.get("verify_in", "").lower()
        if verify_in and verify_in not in names:
            problems.append(f"{prefix}VERIFY_IN names {verify_in!r}, which {LIST_VAR} does not list "
                            f"({', '.join(names)})")
        found_envs.append(Environment(
            name=name, jobs_api_url=url.rstrip("/"), workload_user=own["workload_user"],
            workload_password=own["workload_password"], cde_token=own["cde_token"],
            token_url=(own.get("token_url") or "").rstrip("/") or None,
            verify_in="" if verify_in == name else verify_in))

    watch = [n.strip().lower() for n in values.get(WATCH_VAR, "").split(",") if n.strip()]
    problems += [f"{WATCH_VAR} names {n!r}, which {LIST_VAR} does not list ({', '.join(names)})"
                 for n in watch if n not in names]
    if not watch:  # every environment that no other one proves its fixes in
        verifiers = {e.verify_in for e in found_envs if e.verify_in}
        watch = [n for n in names if n not in verifiers] or names
    if problems:
        raise ConfigError(problems)
    return tuple(replace(e, watched=e.name in watch) for e in found_envs)


def _single(values: Mapping[str, str]) -> Environment:
    """Today's variables as the environment `default` (Settings checks them, as before)."""
    return Environment(name=DEFAULT, jobs_api_url=values.get("JOBS_API_URL", "").rstrip("/"),
                       workload_user=values.get("WORKLOAD_USER", ""),
                       workload_password=values.get("WORKLOAD_PASSWORD", ""), cde_token=values.get("CDE_TOKEN", ""),
                       token_url=(values.get("CDE_TOKEN_URL") or "").rstrip("/") or None)


def _http_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
