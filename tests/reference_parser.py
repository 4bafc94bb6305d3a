"""A slow, simple pure-Python reference for the line rules of docs/gcode.md ("Parsing rules").

It exists only to check the Rust lexer (native/src/gcode/lexer.rs): the tests parse the same bytes
with both and compare every column modelled here. It is written to be read, not to be fast: one
small function per rule, byte strings throughout, and Python's own ``float()`` for numbers.

Where docs/gcode.md leaves a detail open, this follows lexer.rs; each such place is marked
``# LEXER DETAIL:``.

Output: ``parse(data)`` returns one dict per line::

    {"line", "offset", "command", "n", "checksum_ok", "X" ... "T", "params", "text", "comment",
     "unexpected"}

with None for nulls, floats for the word columns (NaN for a flag), ``params`` a list of
(key, value) string pairs or None when empty. The last is not a table column: the (start, end)
spans skipped as unexpected text.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

WORD_LETTERS = "XYZEFIJKRPST"
TEXT_COMMANDS = {"M23", "M28", "M30", "M32", "M33", "M117", "M118", "M928", "M16"}

# What Rust's `u8::is_ascii_whitespace` strips (Python's bytes.strip() would also strip \x0b).
TRIM = b" \t\n\x0c\r"
BLANK = b" \t"  # spaces and tabs separate words
I64_MAX = 2**63 - 1

NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # no exponent
DIGITS = re.compile(rb"[0-9]+")
IDENT = re.compile(rb"[A-Za-z0-9_]+")
COMMAND_NUMBER = re.compile(rb"([0-9]+)(\.[0-9]*)?|(\.[0-9]+)")  # unsigned; `G.` is no number


def split_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, content) per line: lines end at \\n, \\r\\n or a lone \\r; a last unterminated line counts."""
    lines = []
    start = 0
    i = 0
    while i < len(data):
        b = data[i : i + 1]
        if b == b"\n" or b == b"\r":
            lines.append((start, data[start:i]))
            i += 2 if data[i : i + 2] == b"\r\n" else 1
            start = i
        else:
            i += 1
    if start < len(data):
        lines.append((start, data[start:]))
    return lines


def decode(b: bytes) -> str:
    """Invalid UTF-8 becomes U+FFFD (the same maximal-subpart rule as Rust's from_utf8_lossy)."""
    return b.decode("utf-8", errors="replace")


def is_alpha(b: int) -> bool:
    return (65 <= b <= 90) or (97 <= b <= 122)


def is_ident_byte(b: int | None) -> bool:
    return b is not None and (is_alpha(b) or 48 <= b <= 57 or b == 95)


def starts_number(b: int | None) -> bool:
    return b is not None and (48 <= b <= 57 or b in b".+-")


def xor(b: bytes) -> int:
    x = 0
    for c in b:
        x ^= c
    return x


class Line:
    """Parses one line's content (without its terminator)."""

    def __init__(self, s: bytes):
        self.s = s
        self.command: str | None = None
        self.n: int | None = None
        self.checksum_ok: bool | None = None
        self.words: dict[str, float] = {}
        self.params: list[tuple[str, str]] = []
        self.text: str | None = None
        self.comments: list[str] = []
        self.unexpected: list[tuple[int, int]] = []

    # -- small helpers ------------------------------------------------------------------------
    def at(self, i: int) -> int | None:
        return self.s[i] if i < len(self.s) else None

    def skip_blank(self, i: int) -> int:
        while i < len(self.s) and self.s[i] in BLANK:
            i += 1
        return i

    def add_comment(self, raw: bytes) -> None:
        self.comments.append(decode(raw.strip(TRIM)))

    def add_param(self, key: bytes, value: bytes) -> None:
        self.params.append((decode(key), decode(value)))

    def checksum(self, star: int) -> int:
        """`*` at `star`: digits after it are the XOR of every byte before it. Returns where to go on."""
        m = DIGITS.match(self.s, star + 1)
        if not m:
            return star + 1  # '*' without a number: reported, no checksum
        ok = xor(self.s[:star]) == int(m.group())
        # LEXER DETAIL: with several checksums on one line, checksum_ok is true if any matches.
        self.checksum_ok = ok or bool(self.checksum_ok)
        return m.end()

    # -- the line, left to right ------------------------------------------------------------
    def parse(self) -> Line:
        s = self.s
        i = self.skip_blank(0)
        if self.at(i) == ord("%"):
            self.command = "%"
            i += 1
        elif self.at(i) in (ord("N"), ord("n")):
            k = self.skip_blank(i + 1)  # LEXER DETAIL: spaces may follow N
            m = DIGITS.match(s, k)
            if m:
                self.n = min(int(m.group()), I64_MAX)  # saturates
                i = m.end()
        i = self.skip_blank(i)
        # LEXER DETAIL: the command is looked for after '%' too, and then replaces it.
        i, mode = self.read_command(i)
        if mode == "text":
            self.free_text(i)
        elif mode == "extended":
            self.extended(i)
        else:
            self.words_from(i)
        return self

    def read_command(self, i: int) -> tuple[int, str]:
        s = self.s
        c = self.at(i)
        if c is None or not (is_alpha(c) or c == ord("_")):
            return i, "words"
        letter = chr(c).upper()
        k = self.skip_blank(i + 1)
        after = self.at(k)
        # G/M/T and a number (`G1`, `G 1`, `M862.3`, `G.5`, `G1.`), in any case.
        m = COMMAND_NUMBER.match(s, k)
        if letter in "GMT" and m:
            # Leading zeros dropped, a fraction kept as written.
            whole, frac = m.group(1) or b"", m.group(2) or m.group(3) or b""
            whole = whole.lstrip(b"0") or (b"0" if whole else b"")
            self.command = letter + decode(whole + frac)
            return m.end(), "text" if self.command in TEXT_COMMANDS else "words"
        # `G.`: a point without digits is no number (rule 4), so no command; `G` is a flag.
        # LEXER DETAIL: the identifier test looks at the byte right after the first letter, and
        # a lone '_' is an identifier too (docs: "two or more characters").
        if c == ord("_") or (is_ident_byte(self.at(i + 1)) and not starts_number(after)):
            m = IDENT.match(s, i)
            assert m is not None
            self.command = decode(m.group().upper())
            return m.end(), "extended"
        return i, "words"

    def words_from(self, i: int) -> None:
        """Rule 4-6: words, flags, quoted strings, comments, checksums, unexpected text."""
        s = self.s
        m486 = self.command == "M486"
        while i < len(s):
            c = s[i]
            if c in BLANK:
                i += 1
            elif c == ord(";"):
                self.add_comment(s[i + 1 :])
                return
            elif c == ord("("):
                close = s.find(b")", i + 1)
                if close < 0:  # unclosed: comments out the rest of the line
                    self.add_comment(s[i + 1 :])
                    return
                self.add_comment(s[i + 1 : close])
                i = close + 1
            elif c == ord("*"):
                i = self.checksum(i)
            elif is_alpha(c):
                i = self.word(i, m486)
            else:
                # Unexpected text (`.3` of `X1.2.3`, `{machine_depth}`), skipped as one token.
                # LEXER DETAIL: letters do not end it (the docs leave its extent open); a space,
                # tab or ';' does, and so do '(' and '*', which start a comment or a checksum
                # wherever they are (rules 5 and 6).
                end = i + 1
                while end < len(s) and s[end] not in b" \t;(*":
                    end += 1
                self.unexpected.append((i, end))
                i = end

    def word(self, i: int, m486: bool) -> int:
        s = self.s
        letter = chr(s[i]).upper()
        k = self.skip_blank(i + 1)  # optional spaces between letter and number
        if self.at(k) == ord('"'):
            return self.quoted(letter, k)
        if m486 and letter == "A":
            # `M486 A<name>`: the rest of the line up to ';' or '*'.
            end = k
            while end < len(s) and s[end] not in b";*":
                end += 1
            self.add_param(b"A", s[k:end].strip(TRIM))
            return end
        m = NUMBER.match(s, k)
        if m and m.end() < len(s) and s[m.end()] not in b" \t;(*" and not is_alpha(s[m.end()]):
            # Not a plain number (`M115 U3.11.0`, `X1,5`): the token up to a blank, ';', '(' or
            # '*' is text, in params.
            end = m.end()
            while end < len(s) and s[end] not in b" \t;(*":
                end += 1
            self.add_param(letter.encode(), s[k:end])
            return end
        if m:
            if letter in WORD_LETTERS:
                self.words[letter] = float(m.group())  # a repeated word: the last value is kept
            else:
                self.add_param(letter.encode(), m.group())  # as written
            return m.end()
        # A flag: NaN in a word column, an empty value in params.
        if letter in WORD_LETTERS:
            self.words[letter] = float("nan")
        else:
            self.add_param(letter.encode(), b"")
        # LEXER DETAIL: a sign or point that starts no number is skipped with the letter.
        return k + 1 if starts_number(self.at(k)) else i + 1

    def quoted(self, letter: str, open_: int) -> int:
        """`P"MK3S"`: `""` inside is a literal quote; an unclosed string runs to the line's end."""
        s = self.s
        value = b""
        i = open_ + 1
        while i < len(s):
            if s[i : i + 2] == b'""':
                value += b'"'
                i += 2
            elif s[i] == ord('"'):
                i += 1
                break
            else:
                value += s[i : i + 1]
                i += 1
        self.add_param(letter.encode(), value)
        return i

    def free_text(self, i: int) -> None:
        """Rule 8: the rest of the line up to ';' (and a trailing `*NN` checksum) is the text."""
        s = self.s
        semi = s.find(b";", i)
        end = len(s) if semi < 0 else semi
        text_end = end
        star = s.rfind(b"*", i, end)
        # LEXER DETAIL: a trailing `*` followed by digits and spaces only (at least one byte)
        # ends the text and is read as a checksum.
        if star >= 0 and star + 1 < end and all(b in b"0123456789 " for b in s[star + 1 : end]):
            self.checksum(star)
            text_end = star
        self.text = decode(s[i:text_end].strip(TRIM))
        if semi >= 0:
            self.add_comment(s[semi + 1 :])

    def extended(self, i: int) -> None:
        """Rule 7: `KEY=VALUE` words split with shell rules; `;` or `#` outside quotes: comment."""
        s = self.s
        while True:
            i = self.skip_blank(i)
            if i >= len(s):
                return
            if s[i] in b";#":
                self.add_comment(s[i + 1 :])
                return
            if s[i] == ord("*") and i + 1 < len(s) and s[i + 1] in b"0123456789":
                i = self.checksum(i)
                continue
            key, value, i = self.shell_word(i)
            # A word without '=' is reported and kept with an empty value.
            self.add_param(key.upper(), value)

    def shell_word(self, i: int) -> tuple[bytes, bytes, int]:
        s = self.s
        parts: list[bytes] = [b""]  # [key] before the first '=', [key, value] after
        while i < len(s) and s[i] not in b" \t;#":
            c = s[i]
            if c == ord("'"):  # single quotes: literal, unclosed runs to the end
                close = s.find(b"'", i + 1)
                close = len(s) if close < 0 else close
                parts[-1] += s[i + 1 : close]
                i = close + 1
            elif c == ord('"'):  # double quotes: \" \\ \$ \` escapes
                i += 1
                while i < len(s) and s[i] != ord('"'):
                    if s[i] == ord("\\") and i + 1 < len(s) and s[i + 1] in b'"\\$`':
                        i += 1
                    parts[-1] += s[i : i + 1]
                    i += 1
                i += 1  # the closing quote (or past the end)
            elif c == ord("\\") and i + 1 < len(s):  # backslash escapes the next byte
                parts[-1] += s[i + 1 : i + 2]
                i += 2
            elif c == ord("=") and len(parts) == 1:
                parts.append(b"")
                i += 1
            else:
                parts[-1] += s[i : i + 1]
                i += 1
        key = parts[0]
        value = parts[1] if len(parts) == 2 else b""
        return key, value, min(i, len(s))


def parse_line(s: bytes) -> Line:
    return Line(s).parse()


def parse(data: bytes) -> list[dict[str, Any]]:
    """One dict per line; see the module docstring."""
    rows = []
    for number, (offset, content) in enumerate(split_lines(data), start=1):
        ln = parse_line(content)
        row: dict[str, Any] = {
            "line": number,
            "offset": offset,
            "command": ln.command,
            "n": ln.n,
            "checksum_ok": ln.checksum_ok,
        }
        for w in WORD_LETTERS:
            row[w] = ln.words.get(w)
        row["params"] = ln.params or None
        row["text"] = ln.text
        row["comment"] = " ".join(ln.comments) if ln.comments else None
        row["unexpected"] = ln.unexpected
        rows.append(row)
    return rows


COLUMNS = ["line", "offset", "command", "n", "checksum_ok", *WORD_LETTERS, "params", "text", "comment"]


# -- comparison with the fast parser's table (used by the tests) ------------------------------
def _same(a: Any, b: Any) -> bool:
    """Equal as the tests mean it: both null, both NaN, or floats with the same bit pattern."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, float) and isinstance(b, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def table_rows(table: Any) -> list[dict[str, Any]]:
    """The fast parser's table (pyarrow) as dicts holding the columns this module models."""
    cols = {name: table.column(name).to_pylist() for name in COLUMNS}
    cols["params"] = [None if p is None else [tuple(kv) for kv in p] for p in cols["params"]]
    return [{name: cols[name][r] for name in COLUMNS} for r in range(table.num_rows)]


def differences(data: bytes, ref: list[dict[str, Any]], fast: list[dict[str, Any]], limit: int = 20) -> list[str]:
    """Human-readable differences between reference rows and fast rows (at most `limit`)."""
    out: list[str] = []
    if len(ref) != len(fast):
        out.append(f"row count: reference {len(ref)}, fast {len(fast)}")
    lines = split_lines(data)
    for r, (a, b) in enumerate(zip(ref, fast, strict=False)):
        for name in COLUMNS:
            if not _same(a[name], b[name]):
                out.append(f"line {r + 1} {lines[r][1]!r}: column {name}: reference {a[name]!r}, fast {b[name]!r}")
                if len(out) >= limit:
                    return out
    return out
