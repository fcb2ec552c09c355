"""A short run of bench/chaos.py: the sandbox and the bot as separate processes, the
platform's rate limits at their real numbers, 5xx, resets, a 429 storm, every notification
twice and reordered, the RingSense subscription deleted, expired and blacklisted, and the
bot SIGKILLed twice. Every digest arrives exactly once, only where it belongs, and the bot
sends nothing inside a 429 penalty: not after it knew of it, not from a process started
after it (the penalty and busy windows are kept), and not side by side with the request that
met it (while a group's state is unknown, its requests go one at a time).
"""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run_chaos


async def test_a_short_chaos_run_loses_duplicates_and_misdirects_nothing(tmp_path: Path) -> None:
    result = await run_chaos(
        calls=16,
        kills=2,
        seed=20261130,
        workdir=tmp_path,
        stream_seconds=16,
        settle_timeout_s=100,  # ends as soon as all arrived; room for several penalties
        owners_count=6,
        long_share=1 / 3,  # calls longer than 10 minutes, which catch-up must still find
        # The platform's counts per 15 s instead of 60 s (penalty too): the same pacing and
        # penalties, met four times sooner, so the run waits less for windows to pass.
        rate_window_s=15,
        # Each subscription mishap is noticed at the bot's next check: 5 s, not 15 s.
        subscription_check_s=5,
        verbose=False,
    )
    why = "\n".join([*result.lines(), *map(str, result.lost), *result.inside_penalty])
    assert result.kills == 2, why
    assert result.mishaps == ["delete", "expire", "blacklist"], why
    assert result.expected >= 16, why
    assert result.lost == [], why
    assert result.duplicated == [], why
    assert result.misdirected == [], why
    assert result.inside_penalty == [], why
