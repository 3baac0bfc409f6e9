"""A small order workflow: reserve stock, charge (which fails once and is retried), wait for the
warehouse to confirm shipping (an outside event), sleep a day, then ask for a review."""

from __future__ import annotations

import os
from datetime import timedelta

from pydantic import BaseModel

import legato

app = legato.App("quickstart", os.environ.get("LEGATO_DATABASE_URL"))


class Order(BaseModel):
    order_id: str
    item: str
    quantity: int
    amount_cents: int


class Receipt(BaseModel):
    order_id: str
    charge_id: str
    tracking: str
    review_requested: bool


# Counts attempts in this process so the demo can show a retry; a real charge would call a
# payment API with the step's idempotency key, so a retried charge is never taken twice.
_attempts: dict[str, int] = {}


@app.step()
def reserve_stock(order: Order) -> str:
    return f"reservation-{order.order_id}-{order.quantity}x{order.item}"


@app.step(retry=legato.RetryPolicy(max_attempts=3, initial=timedelta(milliseconds=200)))
def charge_card(order: Order) -> str:
    key = legato.current_step().idempotency_key
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise ConnectionError("payment gateway timed out")  # the first attempt fails
    return f"ch_{key.replace(':', '_')}"


@app.step()
async def request_review(order: Order, tracking: str) -> bool:
    return True


@app.workflow(name="fulfil-order")
async def fulfil_order(ctx: legato.Context, order: Order) -> Receipt:
    await reserve_stock(order)
    charge_id = await charge_card(order)
    shipped = await ctx.wait_for_event("shipped", timeout=timedelta(days=3))
    await ctx.sleep(timedelta(days=1))  # durable: the run is unloaded while it sleeps
    reviewed = await request_review(order, shipped["tracking"])
    return Receipt(
        order_id=order.order_id,
        charge_id=charge_id,
        tracking=shipped["tracking"],
        review_requested=reviewed,
    )
