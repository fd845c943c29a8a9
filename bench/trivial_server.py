"""`python -m bench.trivial_server`: one trivial FastAPI route served the way the local CDE serves its API.

The baseline of `python -m bench cde`: the same bound socket (`cde_local.bind_socket`), the same
uvicorn settings (`cde_local.http_server`, the access log as `python -m cde_local` keeps it) and a synchronous route like the CDE's, so the ratio of
the two latencies is what the CDE's own work costs. Prints `URL=http://HOST:PORT` once it listens.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from cde_local import base_url_for, bind_socket, http_server

PING_PATH = "/ping"


def create_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get(PING_PATH)
    def ping() -> dict[str, bool]:
        return {"ok": True}

    return app


def main() -> int:
    sock = bind_socket("127.0.0.1", 0)
    sock.listen(2048)
    print(f"URL={base_url_for('127.0.0.1', sock.getsockname()[1])}", flush=True)
    http_server(create_app(), log_level="info").run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
