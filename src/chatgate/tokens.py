"""Short-lived bearer tokens, the way ``gcloud auth print-access-token`` gives them for Vertex.

A token is a JWT (HS256) signed with a secret kept in the user's state directory; the
server and ``chatgate token`` find the same file with no configuration. The secret is made
on first use, readable by its owner only. A token names one project, or every project.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

ISSUER = "chatgate"
ALL_PROJECTS = "*"
SECRET_FILE = "token-secret"


@dataclass(frozen=True, slots=True)
class Claims:
    project: str  # ALL_PROJECTS for every project
    expires: int


class InvalidToken(Exception):
    pass


def load_secret(state_dir: Path) -> bytes:
    """Read the signing secret, creating it (mode 0600) if it does not exist yet."""
    path = state_dir / SECRET_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(48).encode()
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    try:
        # Link, not rename: if another process made the secret meanwhile, keep theirs.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


def mint(secret: bytes, *, project: str | None = None, lifetime: int = 3600, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "sub": project or ALL_PROJECTS, "iat": issued, "exp": issued + lifetime}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: bytes, token: str) -> Claims:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired; mint a new one with `chatgate token`") from None
    except jwt.PyJWTError:
        raise InvalidToken("the token is not valid") from None
    return Claims(project=claims["sub"], expires=claims["exp"])
