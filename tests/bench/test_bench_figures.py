"""The benches' own arithmetic and inputs: what they print must mean what README says."""

from __future__ import annotations

import json
from pathlib import Path

from bench._common import pbx_event, per_whole_window, spread
from bench.db_size import fill_database
from bot.ringsense import CallInsights
from bot.storage import Storage


def test_delivery_rate_counts_whole_windows_only() -> None:
    # Two whole 6 s windows from the first create; the part window at 12-13 s is left out.
    moments = [100.0, 101.0, 105.9, 106.0, 107.0, 112.5, 113.0]

    assert per_whole_window(moments, 6.0) == [3.0, 2.0]
    assert per_whole_window([], 6.0) == []


def test_repeated_runs_print_min_median_max() -> None:
    assert spread([3.0, 1.0, 2.0]) == "1.00 / 2.00 / 3.00"
    assert spread([12_000.4, 9_000.0, 10_500.0], 0) == "9,000 / 10,500 / 12,000"


def test_real_sized_event_is_about_42_kb_and_one_the_bot_reads() -> None:
    event = pbx_event(
        account_id="809640001",
        owner_id="62288330001",
        record_id="2080226141433",
        session_id="s-a3a0e1c355b8z1a1fc972ae0zf7ae720000",
        utterances=200,
    )

    assert 38_000 <= len(json.dumps(event)) <= 46_000
    call = CallInsights.from_api(event["body"], account_id="809640001")
    assert call.owner_extension_id == "62288330001"
    assert call.source_record_id == "2080226141433"
    speakers = {s["speakerId"] for s in event["body"]["speakerInfo"]}
    transcript = event["body"]["insights"]["Transcript"]
    assert len(transcript) == 200
    assert {unit["speakerId"] for unit in transcript} <= speakers


async def test_filled_calls_are_ones_the_bot_lists_for_their_people(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    storage = await Storage.open(database)
    body = pbx_event(
        account_id="809640001",
        owner_id="62288330001",
        record_id="2080226141433",
        session_id="s-a3a0e1c355b8z1a1fc972ae0zf7ae720000",
        utterances=4,
    )["body"]
    await storage.save_call(
        "pbx:2080226141433",
        domain="pbx",
        source_record_id="2080226141433",
        source_session_id=body["sourceSessionId"],
        owner_extension_id="62288330001",
        recording_start_time=body["recordingStartTime"],
        insights=body,
        account_id="809640001",
    )
    await storage.close()

    calls, _ = fill_database(database, 300)

    storage = await Storage.open(database)
    try:
        listed = await storage.calls_of("809640001", "62288330001", 10)
        stand_in = await storage.calls_of("809640001", "62288330001-p7", 10)
    finally:
        await storage.close()
    assert calls == 300
    # The person owns the real call and every 100th copy, each a minute older.
    assert [key for key, _ in listed] == [
        "pbx:2080226141433",
        "pbx:2080226141433#100",
        "pbx:2080226141433#200",
    ]
    assert [key for key, _ in stand_in] == [
        "pbx:2080226141433#7",
        "pbx:2080226141433#107",
        "pbx:2080226141433#207",
    ]
