"""Storage and tracking URLs as people may see them: without the password they may carry."""
from __future__ import annotations

import re


def redact(url: str) -> str:
    """`postgresql://user:secret@host/db` → `postgresql://user:***@host/db`, for messages and files."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
