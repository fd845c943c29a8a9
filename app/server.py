"""`python -m app serve`: one healer worker (the watcher) and the dashboard in one process."""

from __future__ import annotations

import os

from agents.config import Settings
from agents.healer import Healer
from app.service import DashboardService
from app.worker import HealerWorker


def start_stack(settings: Settings, *, watch: bool = True) -> tuple[Healer, HealerWorker, DashboardService]:
    """The healer, its one worker thread (started) and the dashboard's service over them."""
    healer = Healer(settings)
    worker = HealerWorker(healer, watch=watch).start()
    return healer, worker, DashboardService(settings.data_dir, worker, history=healer.history)


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    from app.dashboard import bind_address, launch

    host = host or settings.dashboard_host
    port = port if port is not None else settings.dashboard_port
    host, port = bind_address(host, port, os.environ)  # CAI's own variable: 127.0.0.1:$CDSW_APP_PORT
    healer, worker, service = start_stack(settings)
    print(f"dashboard: http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        launch(service, host=host, port=port, auth=settings.dashboard_auth, block=True)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        healer.close()
    return 0
