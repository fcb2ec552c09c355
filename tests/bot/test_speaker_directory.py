"""The directory's cache holds when lookups come at once: several digests or transcripts
of one person handled together (several workers, several inbox lines on PostgreSQL) ask
RingCentral once, not once each; the Light group's 50 a minute are everyone's."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.speakers import SpeakerDirectory


class SlowDirectory:
    """A directory that answers after the event loop has turned a few times, counting
    what it was asked."""

    def __init__(self) -> None:
        self.extension_requests: list[str] = []
        self.enrollment_requests: list[str] = []

    async def extension(self, extension_id: str) -> Mapping[str, object]:
        self.extension_requests.append(extension_id)
        await asyncio.sleep(0.01)
        return {"id": extension_id, "name": f"Agent {extension_id}"}

    async def ai_enrollment(self, enrollment_id: str) -> Mapping[str, object]:
        self.enrollment_requests.append(enrollment_id)
        await asyncio.sleep(0.01)
        return {"enrollmentComplete": True}


async def test_names_asked_at_once_cost_one_lookup_and_all_get_the_name() -> None:
    directory, api = SpeakerDirectory(), SlowDirectory()
    names = await asyncio.gather(
        *(directory.extension_name(api, "809640001", "101") for _ in range(3)),
        directory.extension_name(api, "809640001", "102"),
    )
    assert names == ["Agent 101", "Agent 101", "Agent 101", "Agent 102"]
    assert sorted(api.extension_requests) == ["101", "102"]
    # and afterwards from the cache
    assert await directory.extension_name(api, "809640001", "101") == "Agent 101"
    assert len(api.extension_requests) == 2


async def test_enrollments_asked_at_once_cost_one_heavy_request() -> None:
    directory, api = SpeakerDirectory(), SlowDirectory()
    answers = await asyncio.gather(
        *(directory.is_enrolled(api, "809640001", "101") for _ in range(3))
    )
    assert answers == [True, True, True]
    assert api.enrollment_requests == ["101"]


async def test_one_caller_giving_up_does_not_cancel_the_lookup_for_the_others() -> None:
    directory, api = SpeakerDirectory(), SlowDirectory()
    impatient = asyncio.create_task(directory.extension_name(api, "809640001", "101"))
    patient = asyncio.create_task(directory.extension_name(api, "809640001", "101"))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == "Agent 101"
    assert api.extension_requests == ["101"]
