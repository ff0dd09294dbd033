"""The example project's tasks: what ``jobq worker shop.jobs`` runs."""

from __future__ import annotations

from pydantic import BaseModel

from worker import JobContext, task


class Order(BaseModel):
    order_id: int
    amount: float


class Receipt(BaseModel):
    order_id: int
    total: float


@task(timeout_s=30, max_tries=5)
async def charge(ctx: JobContext, order: Order) -> Receipt:
    """Charge an order (here: add 20 % tax); retried with backoff if it raises."""
    return Receipt(order_id=order.order_id, total=round(order.amount * 1.2, 2))
