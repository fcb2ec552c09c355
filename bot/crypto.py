"""Secrets at rest: tokens the bot must keep (install tokens, RingSense refresh tokens) are
stored encrypted with a key that lives only in the environment (`BOT_SECRET_KEY`).

Fernet (from `cryptography`) gives authenticated encryption with a versioned token format; we
do not invent our own. `BOT_SECRET_KEY` holds one or more Fernet keys separated by commas: the
first encrypts, every one of them decrypts, which is how a key is rotated (put the new key
first, keep the old one after it until `python -m bot rotate-key` has re-encrypted the rows).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV_SECRET_KEY = "BOT_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


class SecretKeyError(ValueError):
    """`BOT_SECRET_KEY` is missing or not a valid Fernet key (the message never holds the key)."""


class UndecryptableSecret(Exception):
    """A stored secret that none of the configured keys opens (wrong or rotated-away key)."""


def generate_key() -> str:
    """A new random key, in the form `BOT_SECRET_KEY` expects."""
    return Fernet.generate_key().decode("ascii")


class TokenCipher:
    """Encrypts and decrypts short secrets (tokens) for storage."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeyError(f"{ENV_SECRET_KEY} holds no key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise SecretKeyError(
                    f"key {position} of {ENV_SECRET_KEY} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with "
                    "`python -m bot generate-key`)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str) -> TokenCipher:
        """From the environment's form: keys separated by commas, the current one first."""
        return cls([part.strip() for part in value.split(",") if part.strip()])

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecret(
                f"a stored secret cannot be decrypted with the keys in {ENV_SECRET_KEY}"
            ) from None

    def reencrypt(self, stored: str) -> str:
        """The same secret under the current (first) key: key rotation, row by row."""
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecret(
                f"a stored secret cannot be decrypted with the keys in {ENV_SECRET_KEY}"
            ) from None
