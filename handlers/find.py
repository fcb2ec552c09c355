"""`find <words>` across the calls I may see, `find <words> in <call>` in one transcript."""

from __future__ import annotations

import re

from bot.access import NOT_VISIBLE, Identity, is_admin, may_see
from bot.cards.find import find_card
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Router
from bot.search import MAX_CALLS, match_expression
from bot.storage import SearchHit
from handlers.calls import RECORDING_ID, RINGSENSE_LINK, answer_where_everyone_may_see, timezone_for

router = Router("find")

_IN_CALL = re.compile(r"^(?P<words>.*?)\s+in\s+(?P<call>\S+)$", re.IGNORECASE | re.DOTALL)
USAGE = (
    "Say **find <words>** to search the calls you may see (titles, summaries, key points, "
    "next steps and transcripts), or **find <words> in <recording id>** for one call."
)


@router.command(
    "find",
    summary="search the calls I may see",
    usage="find <words> [in <recording id>]",
    aliases=("search", "grep"),
    details=(
        f"Shows up to {MAX_CALLS} calls, the most relevant, newest first, each with the "
        "line that matched and its time in the call."
    ),
)
async def find_command(ctx: Context) -> None:
    text = ctx.args.strip()
    in_call = _IN_CALL.match(text)
    words, reference = (in_call["words"], in_call["call"]) if in_call else (text, None)
    match = match_expression(words)
    if match is None:
        await ctx.reply(USAGE)
        return
    shown = " ".join(part.strip('"') for part in match.split())
    asker = await ctx.actor_identity()
    if reference is not None:
        await _find_in_one_call(ctx, asker, match, shown, reference.strip("<>"))
        return
    found = await _best_hit_per_visible_call(ctx, asker, match) if asker else []
    if not found:
        # The words are not repeated: the answer is the same whether or not a call the
        # asker may not see holds them.
        await ctx.reply(
            "Nothing found in the calls you may see. I look for calls that hold every word "
            "you give, in their titles, summaries, key points, next steps and transcripts."
        )
        return
    found.sort(key=lambda pair: pair[1].recording_start_time is not None, reverse=True)
    found.sort(
        key=lambda pair: (
            pair[1].recording_start_time.timestamp() if pair[1].recording_start_time else 0.0
        ),
        reverse=True,
    )
    heading = f'Found {len(found)} call{"" if len(found) == 1 else "s"} for "{shown}"'
    destination = await answer_where_everyone_may_see(ctx, [c for _, c in found])
    await ctx.send_card(
        destination, find_card(ctx.services.cards, found, timezone_for(ctx), heading=heading)
    )


async def _best_hit_per_visible_call(
    ctx: Context, asker: Identity, match: str
) -> list[tuple[SearchHit, CallInsights]]:
    """The best-ranked line of each of the (at most `MAX_CALLS`) most relevant calls the
    asker may see: the calls they took part in, or every call of their account for its
    administrators; each checked again with `may_see`."""
    services = ctx.services
    admins, home = services.config.admins, services.service_account_id
    admin = is_admin(asker, admins, home)
    hits = await services.storage.search_calls(
        asker.account_id, match, participant=None if admin else asker.extension_id
    )
    found: list[tuple[SearchHit, CallInsights]] = []
    seen: set[str] = set()
    for hit in hits:
        if hit.call_key in seen:
            continue
        seen.add(hit.call_key)
        call = await _visible_call(ctx, asker, hit.call_key)
        if call is not None:
            found.append((hit, call))
        if len(found) == MAX_CALLS:
            break
    return found


async def _find_in_one_call(
    ctx: Context, asker: Identity | None, match: str, shown: str, reference: str
) -> None:
    key = await _call_key_of(ctx, reference) if asker else None
    call = await _visible_call(ctx, asker, key) if asker and key else None
    if asker is None or key is None or call is None:
        await ctx.reply(NOT_VISIBLE)
        return
    hits = await ctx.services.storage.search_calls(
        asker.account_id, match, participant=None, call_key=key, kinds=["transcript"]
    )
    if not hits:
        await ctx.reply("Nothing found in that call's transcript.")
        return
    hits = sorted(hits[:MAX_CALLS], key=lambda h: (h.line.offset_s or 0.0, h.line.position))
    heading = f'Found {len(hits)} line{"" if len(hits) == 1 else "s"} for "{shown}"'
    destination = await answer_where_everyone_may_see(ctx, [call])
    card = find_card(
        ctx.services.cards, [(h, call) for h in hits], timezone_for(ctx), heading=heading
    )
    await ctx.send_card(destination, card)


async def _call_key_of(ctx: Context, reference: str) -> str | None:
    """The stored call of the install's account that a recording id or RingSense link
    names (another account's: None)."""
    storage, account = ctx.services.storage, ctx.bot.account_id
    if RINGSENSE_LINK.match(reference):
        found = await storage.call_by_ringsense_url(reference.rstrip("/"), account)
        return found[0] if found else None
    if not RECORDING_ID.match(reference):
        return None
    for domain in ctx.services.config.ringcentral.ringsense_domains:
        key = f"{domain}:{reference}"
        if await storage.call_of_account(key, account) is not None:
            return key
    return None


async def _visible_call(ctx: Context, asker: Identity | None, key: str) -> CallInsights | None:
    services = ctx.services
    account = ctx.bot.account_id
    body = await services.storage.call_of_account(key, account)
    if body is None:
        return None
    try:
        call = CallInsights.from_api(body, account_id=account)
    except InsightsFormatError:
        return None
    if not may_see(asker, call, services.config.admins, services.service_account_id):
        return None
    return call
