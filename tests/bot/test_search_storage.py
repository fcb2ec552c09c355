"""`find`'s index as stored, on both backends (issue 13): every word must be in the line,
words match their other forms (stemming), the best line comes first, a person finds only
their account's calls (and, when asked, only the calls they took part in), and nothing a
person types is query syntax."""

from __future__ import annotations

from bot.search import match_expression
from bot.store import StorageInterface
from bot.store.records import SearchHit, SearchLine
from tests.stores import StoreFactory, postgres_rows


async def _call(
    storage: StorageInterface,
    key: str,
    account: str,
    lines: list[SearchLine],
    *,
    owner: str = "101",
    others: tuple[str, ...] = (),
    started: str = "2026-11-01T10:00:00Z",
) -> None:
    await storage.save_call(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id=owner,
        recording_start_time=started,
        insights={"title": key},
        participant_ids=others,
        account_id=account,
    )
    await storage.index_call(key, account, lines)


def _transcript(*texts: str) -> list[SearchLine]:
    return [
        SearchLine("transcript", n, 10.0 * n, f"Speaker {n % 2}", text)
        for n, text in enumerate(texts)
    ]


async def _find(storage: StorageInterface, account: str, words: str, **kw: object) -> list[str]:
    match = match_expression(words)
    assert match is not None
    hits = await storage.search_calls(account, match, participant=None, **kw)  # type: ignore[arg-type]
    return [hit.line.text for hit in hits]


async def test_every_word_must_be_in_the_line_in_any_of_its_forms(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    await _call(
        storage,
        "pbx:1",
        "A",
        _transcript(
            "They signed the pricing agreement yesterday.",
            "Pricing was not discussed with them.",
            "The agreement waits for legal.",
        ),
    )
    assert await _find(storage, "A", "pricing agreement") == [
        "They signed the pricing agreement yesterday."
    ]
    # Other forms of the same words: "priced" and "agreements", "signing" and "signed".
    assert await _find(storage, "A", "priced agreements") == [
        "They signed the pricing agreement yesterday."
    ]
    assert await _find(storage, "A", "SIGNING") == ["They signed the pricing agreement yesterday."]
    assert await _find(storage, "A", "legal pricing") == []


async def test_a_hit_keeps_its_kind_time_and_speaker(any_storage: StorageInterface) -> None:
    storage = any_storage
    await _call(
        storage,
        "pbx:1",
        "A",
        [
            SearchLine("title", 0, None, None, "Renewal with Acme"),
            SearchLine("next_step", 0, 95.5, "Ann Lee", "Send Acme the renewal quote"),
        ],
    )
    match = match_expression("renewal quote")
    assert match is not None
    [hit] = await storage.search_calls("A", match, participant=None)
    assert hit == SearchHit(
        call_key="pbx:1",
        line=SearchLine("next_step", 0, 95.5, "Ann Lee", "Send Acme the renewal quote"),
        score=hit.score,
        recording_start_time="2026-11-01T10:00:00Z",
    )


async def test_the_short_line_that_is_about_the_words_comes_first(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    long_line = (
        "We went through the onboarding plan, the training sessions for the support team, "
        "the migration of the old tickets, the weekly check-ins and then, at the very end, "
        "briefly the budget for next year before everyone had to leave for another meeting."
    )
    await _call(storage, "pbx:long", "A", _transcript(long_line), started="2026-11-05T10:00:00Z")
    await _call(
        storage,
        "pbx:short",
        "A",
        [SearchLine("title", 0, None, None, "Budget review")],
        started="2026-11-01T10:00:00Z",
    )
    match = match_expression("budget")
    assert match is not None
    hits = await storage.search_calls("A", match, participant=None)
    assert [hit.call_key for hit in hits] == ["pbx:short", "pbx:long"]
    assert hits[0].score < hits[1].score  # lower is better, on both backends


async def test_only_the_askers_account_and_their_own_calls_when_asked(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    words = "merger talks"
    await _call(storage, "pbx:a1", "A", _transcript("The merger talks went well."), others=("102",))
    await _call(storage, "pbx:a2", "A", _transcript("Merger talks, round two."), owner="103")
    await _call(storage, "pbx:b1", "B", _transcript("Our merger talks are secret."), owner="102")
    match = match_expression(words)
    assert match is not None
    everyone_of_a = await storage.search_calls("A", match, participant=None)
    assert sorted(hit.call_key for hit in everyone_of_a) == ["pbx:a1", "pbx:a2"]
    of_102 = await storage.search_calls("A", match, participant="102")
    assert [hit.call_key for hit in of_102] == ["pbx:a1"]
    # The same extension id in account B sees only B's call.
    assert [h.call_key for h in await storage.search_calls("B", match, participant="102")] == [
        "pbx:b1"
    ]


async def test_one_calls_transcript_only(any_storage: StorageInterface) -> None:
    storage = any_storage
    await _call(
        storage,
        "pbx:1",
        "A",
        [SearchLine("title", 0, None, None, "Invoice questions"), *_transcript("The invoice.")],
    )
    await _call(storage, "pbx:2", "A", _transcript("Another invoice."))
    assert await _find(storage, "A", "invoice", call_key="pbx:1", kinds=["transcript"]) == [
        "The invoice."
    ]


async def test_indexing_a_call_again_replaces_its_lines(any_storage: StorageInterface) -> None:
    storage = any_storage
    await _call(storage, "pbx:1", "A", _transcript("A draft about kiwis."))
    await storage.index_call("pbx:1", "A", _transcript("The final words about mangoes."))
    assert await _find(storage, "A", "kiwis") == []
    assert await _find(storage, "A", "mangoes") == ["The final words about mangoes."]


async def test_what_a_person_types_is_never_syntax_and_any_text_is_stored(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    odd = 'Robert\'); DROP TABLE calls; -- said \\ "quote" & | ! <-> :* NEAR OR\x00 done'
    await _call(storage, "pbx:1", "A", _transcript(odd, "Nothing else."))
    for words in ("DROP TABLE", "quote & | !", "NEAR OR :*", "robert <-> :*"):
        found = await _find(storage, "A", words)
        assert len(found) == 1 and "DROP TABLE calls" in found[0], words
    assert await _find(storage, "A", "else") == ["Nothing else."]
    assert await storage.call_insights("pbx:1") is not None  # the table is still there


async def test_small_words_and_accents_are_found_as_on_sqlite(
    any_storage: StorageInterface,
) -> None:
    """FTS5 keeps every word and folds accents (`remove_diacritics 2`): `find the` finds
    lines with "the", and café, cafe and CAFÉ are one word. PostgreSQL's `english`
    configuration would drop "the" (a stop word) and keep the accent."""
    storage = any_storage
    await _call(
        storage,
        "pbx:1",
        "A",
        _transcript("Meet at the café near Zürich.", "Coffee at a cafe in Malmo.", "No it."),
    )
    assert await _find(storage, "A", "the") == ["Meet at the café near Zürich."]
    assert sorted(await _find(storage, "A", "CAFE")) == [
        "Coffee at a cafe in Malmo.",
        "Meet at the café near Zürich.",
    ]
    assert await _find(storage, "A", "zurich") == ["Meet at the café near Zürich."]
    assert await _find(storage, "A", "Malmö café") == ["Coffee at a cafe in Malmo."]
    # Every word counts, small ones too: "it" is in no line with "the".
    assert await _find(storage, "A", "the it") == []
    assert await _find(storage, "A", "no it") == ["No it."]


async def test_words_inside_addresses_and_numbers_are_words(any_storage: StorageInterface) -> None:
    """FTS5 splits at every sign: `acme` is in "acme.com" and in an e-mail address, `3`
    and `5` in "3.5". PostgreSQL's parser would keep an address or a number whole."""
    storage = any_storage
    await _call(
        storage,
        "pbx:1",
        "A",
        _transcript(
            "Write to ann.lee@acme.com today.",
            "See https://acme.com/pricing/v2 for it.",
            "They offered $3.5 million, check-in on Friday.",
            "The build_id was 7f3a.",
        ),
    )
    assert sorted(await _find(storage, "A", "acme")) == [
        "See https://acme.com/pricing/v2 for it.",
        "Write to ann.lee@acme.com today.",
    ]
    assert await _find(storage, "A", "lee") == ["Write to ann.lee@acme.com today."]
    assert await _find(storage, "A", "pricing v2") == ["See https://acme.com/pricing/v2 for it."]
    assert await _find(storage, "A", "3.5 million") == [
        "They offered $3.5 million, check-in on Friday."
    ]
    assert await _find(storage, "A", "check in") == [
        "They offered $3.5 million, check-in on Friday."
    ]
    assert await _find(storage, "A", "build id") == ["The build_id was 7f3a."]


async def test_a_long_transcript_gives_back_each_matching_line_as_it_was_said(
    any_storage: StorageInterface,
) -> None:
    """A long transcript (SQLite keeps its lines in blocks of 20 rows' worth, issue 12):
    every line that holds every word is a hit of its own with its place, time, speaker
    and exact text (newlines and accents in it included), wherever it sits; words said
    on two different lines of the same stretch of the call are no hit."""
    storage = any_storage
    texts = [f"Filler line number {n} about the weather." for n in range(65)]
    texts[3] = "We talked about pricing."
    texts[5] = "The agreement waits for legal."
    texts[19] = "First: the pricing agreement,\nthen the café."
    texts[20] = "Second pricing agreement mention."
    texts[64] = "Last words: PRICING AGREEMENT signed."
    await _call(storage, "pbx:long", "A", _transcript(*texts))
    match = match_expression("priced agreements")
    assert match is not None
    hits = await storage.search_calls("A", match, participant=None, limit=500)
    assert sorted(
        (h.line.position, h.line.offset_s, h.line.speaker, h.line.text) for h in hits
    ) == [
        (19, 190.0, "Speaker 1", "First: the pricing agreement,\nthen the café."),
        (20, 200.0, "Speaker 0", "Second pricing agreement mention."),
        (64, 640.0, "Speaker 0", "Last words: PRICING AGREEMENT signed."),
    ]
    assert all(h.call_key == "pbx:long" and h.line.kind == "transcript" for h in hits)
    # "talked" (line 3) and "legal" (line 5): in the same stretch, never in one line.
    assert await _find(storage, "A", "talked legal") == []
    assert await _find(storage, "A", "cafe", call_key="pbx:long", kinds=["transcript"]) == [
        "First: the pricing agreement,\nthen the café."
    ]
    # The limit counts lines.
    assert len(await storage.search_calls("A", '"weather"', participant=None, limit=7)) == 7
    assert len(await storage.search_calls("A", '"weather"', participant=None)) == 60


async def test_lines_of_a_call_not_stored_are_not_kept_on_postgres(postgres_url: str) -> None:
    factory = StoreFactory("postgres", postgres_url)
    storage = await factory.open()
    try:
        await storage.index_call("pbx:never-stored", "A", _transcript("Orphan words."))
        await _call(storage, "pbx:of-b", "B", [])
        await storage.index_call("pbx:of-b", "A", _transcript("Words filed under A."))
        assert await postgres_rows(postgres_url, "SELECT text FROM call_search") == []
    finally:
        await factory.close_all()
