"""Short-lived bearer tokens, the way ``gcloud auth print-access-token`` gives them for Vertex.

A token is a JWT (HS256) signed with a secret kept in the user's state directory; the
server and ``chatgate token`` find the same file with no configuration. The secret is made
on first use, readable by its owner only. A token names one project, or every project.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

ISSUER = "chatgate"
ALL_PROJECTS = "*"
SECRET_FILE = "token-secret"
# HS256 wants a key as long as its hash (RFC 7518, 3.2): 256 bits.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Claims:
    project: str  # ALL_PROJECTS for every project
    expires: int


class InvalidToken(Exception):
    pass


class SecretError(Exception):
    """The secret file is unsafe to use; the message says why and what to do."""


def load_secret(state_dir: Path) -> bytes:
    """Read the signing secret, creating it (mode 0600) if it does not exist yet.

    An existing file must be the owner's alone (no group or other permissions) and hold at
    least ``MIN_SECRET_BYTES``: anyone who can read it can mint tokens, and a short secret can
    be guessed offline from one token. Otherwise ``SecretError`` says what to fix."""
    path = state_dir / SECRET_FILE
    try:
        return _checked(path)
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A unique temporary name (a pid repeats: it is 1 in every container), then linked into
    # place: atomic, and if another process made the secret meanwhile, theirs is kept.
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=f".{SECRET_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_urlsafe(48).encode())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _checked(path)


def _checked(path: Path) -> bytes:
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        secret = f.read().strip()
    if os.name == "posix":
        if info.st_uid != os.geteuid():
            raise SecretError(f"{path} belongs to another user (uid {info.st_uid}); it must be yours alone")
        if info.st_mode & 0o077:
            raise SecretError(
                f"{path} can be read by others (mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
            )
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{path} holds {len(secret)} bytes; a token secret needs at least {MIN_SECRET_BYTES} "
            "(delete the file and chatgate makes a new one)"
        )
    return secret


def mint(secret: bytes, *, project: str | None = None, lifetime: int = 3600, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "sub": project or ALL_PROJECTS, "iat": issued, "exp": issued + lifetime}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: bytes, token: str, *, max_lifetime: int | None = None) -> Claims:
    """The token's claims; ``InvalidToken`` if it is forged, expired, or was minted to live
    longer than ``max_lifetime`` seconds."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub", "iat"]}
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired; mint a new one with `chatgate token`") from None
    except jwt.PyJWTError:
        raise InvalidToken("the token is not valid") from None
    if max_lifetime is not None and claims["exp"] - claims["iat"] > max_lifetime:
        raise InvalidToken(
            f"the token was minted to live longer than this server allows ({max_lifetime} s); "
            "mint a shorter one with `chatgate token --lifetime`"
        )
    return Claims(project=claims["sub"], expires=claims["exp"])
