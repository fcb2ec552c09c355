"""What both backends keep in memory, apart from SQL: the hooks that hand committed work to
the workers, which account a subscription owner belongs to, and the cipher for secrets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.crypto import TokenCipher
from bot.store.records import InboxItem, NoSecretKey, OutboxItem


class StoreCommon:
    """The backend-independent half of `CoreStore` (see bot/store/interface.py)."""

    def __init__(self, cipher: TokenCipher | None = None) -> None:
        self._cipher = cipher
        # Work is handed to the workers in memory once committed (see bot/workers.py):
        # each inbox row the writer commits, each delivery `enqueue` commits.
        self.on_inbox_committed: Callable[[Sequence[InboxItem]], None] = lambda _items: None
        self.on_outbox_queued: Callable[[OutboxItem], None] = lambda _item: None
        # Whether `record_digest` hands the deliveries it commits to the delivery worker
        # in memory too (then nobody needs to wake the worker to read them back).
        self.record_digest_hands_over = False
        # Which account a notification belongs to, by the subscription owner that brought it
        # (a bot extension, the service user): every inbox row is attributed on arrival.
        self._owner_accounts: dict[str, str] = {}
        self.default_account_id: str | None = None

    def attribute_owner(self, owner_id: str, account_id: str) -> None:
        """Notifications whose subscription `owner_id` made belong to `account_id`."""
        if owner_id and account_id:
            self._owner_accounts[owner_id] = account_id

    def account_of_owner(self, owner_id: str | None) -> str | None:
        if owner_id is None:
            return self.default_account_id
        return self._owner_accounts.get(owner_id)

    def _require_cipher(self) -> TokenCipher:
        if self._cipher is None:
            raise NoSecretKey("no BOT_SECRET_KEY: tokens can be neither stored nor read")
        return self._cipher
