"""RingCentral telling us about our own subscriptions."""

from __future__ import annotations

from bot import events
from bot.router import Context, Router

router = Router("upkeep")


@router.event(events.SUBSCRIPTION_RENEWAL)
async def renew_when_reminded(ctx: Context) -> None:
    """The expiry reminder: renew now rather than wait for the periodic check."""
    assert ctx.notification is not None
    if ctx.services.renew_subscription is not None and ctx.notification.subscription_id:
        await ctx.services.renew_subscription(ctx.notification.subscription_id)
