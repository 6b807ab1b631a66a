"""Telegram's MarkdownV2 rules, as the fake Bot API enforces them (sim/fake_telegram.py).

Why a module of its own: the check is what makes the fake refuse a card the real API would
refuse (an unescaped reserved character, an unclosed entity); tests also call it directly on
rendered cards, without a fake server.
"""

from __future__ import annotations

_RESERVED = set("_*[]()~`>#+-=|{}.!")


def markdown_v2_error(text: str) -> str | None:
    """None if text is valid MarkdownV2 as far as our cards use it, else the API's complaint."""
    i, n = 0, len(text)
    open_marks: list[str] = []
    in_code = False
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                return "can't parse entities: text must not end with a backslash"
            i += 2
            continue
        if c == "`":
            in_code = not in_code
        elif in_code:
            pass
        elif c in "*_~":
            mark = "__" if text.startswith("__", i) else c
            if open_marks and open_marks[-1] == mark:
                open_marks.pop()
            else:
                open_marks.append(mark)
            i += len(mark)
            continue
        elif c == "|" and text.startswith("||", i):
            i += 2
            continue
        elif c in _RESERVED:
            return f"can't parse entities: character '{c}' is reserved and must be escaped with the preceding '\\'"
        i += 1
    if in_code or open_marks:
        return "can't parse entities: can't find end of the entity"
    return None
