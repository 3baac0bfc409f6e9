"""Run the quickstart: start an order, let it park on the shipping event, send the event, then
let a time-skipping clock carry it through a one-day sleep; print the journal as a timeline."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

from legato.testing import TimeSkippingClock

from .flows import Order, app, fulfil_order


def main() -> None:
    # The demo skips time so the one-day sleep takes no time; in production it is the system clock.
    app.clock = TimeSkippingClock()
    order = Order(
        order_id=uuid.uuid4().hex[:8], item="espresso-machine", quantity=1, amount_cents=34900
    )
    run = app.start(fulfil_order, order, run_id=f"order-{order.order_id}")
    print(f"started run {run.run_id} on {app.database_url}")

    app.run_until_idle(skip=timedelta(minutes=1))  # long enough for the charge's retry delay
    parked = run.describe()
    print(f"the run is {parked.status!r}, unloaded from memory, waiting on: {parked.waiting_on}")

    app.send_event(run.run_id, "shipped", {"tracking": "1Z999AA10123456784"})
    app.run_until_idle()
    receipt = run.result()
    print(f"run {run.status()!r}: {receipt!r}\n")
    app.close()

    cmd = [sys.executable, "-m", "legato", "--database-url", app.database_url, "show", run.run_id]
    subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
