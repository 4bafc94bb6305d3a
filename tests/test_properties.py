"""Property tests: the fast Rust G-code parser against the pure-Python reference (reference_parser.py).

Generated G-code (structured, line by line) and raw random bytes/text are parsed by both; every
column the reference models must agree (floats by bit pattern, NaN with NaN, null with null).
Further properties: lenient parsing never raises on arbitrary bytes, and neither the thread count,
the piece size nor streaming changes the result.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import reference_parser as ref
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from threedpai import gcode
from threedpai.errors import GcodeParseError

# THREEDPAI_HYPOTHESIS_SCALE=10 multiplies the example counts for a deeper run.
SCALE = int(os.environ.get("THREEDPAI_HYPOTHESIS_SCALE", "1"))
MAIN = settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = settings(max_examples=100 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_agrees(data: bytes) -> None:
    assume(not data.startswith(b"GCDE"))  # binary G-code magic: not text
    rows = ref.parse(data)
    fast = ref.table_rows(gcode.parse(data))
    diffs = ref.differences(data, rows, fast)
    assert not diffs, "fast parser disagrees with the reference:\n" + "\n".join(diffs) + f"\ninput: {data!r}"


# -- structured G-code generators -----------------------------------------------------------------
def cased(s: str) -> st.SearchStrategy[str]:
    """`s` with each letter in random case."""
    return st.tuples(*[st.sampled_from(sorted({c.upper(), c.lower()})) for c in s]).map("".join) if s else st.just("")


blanks = st.sampled_from(["", "", " ", "  ", "\t", " \t "])
some_blank = st.sampled_from([" ", " ", "  ", "\t"])
digits = st.text("0123456789", min_size=1, max_size=5)


@st.composite
def numbers(draw: st.DrawFn) -> str:
    """`[+-]digits[.digits]` or `[+-].digits`, with leading zeros, long mantissas, `1.` and `1.2.3`."""
    sign = draw(st.sampled_from(["", "", "-", "+"]))
    form = draw(st.integers(0, 9))
    if form == 0:
        body = "." + draw(digits)
    elif form == 1:
        body = draw(digits) + "."
    elif form == 2:  # beyond 19 significant digits: the exact slow path
        body = draw(st.text("0123456789", min_size=18, max_size=40)) + "." + draw(st.text("0123456789", max_size=30))
    elif form == 3:  # a second point ends the number
        body = draw(digits) + "." + draw(digits) + "." + draw(digits)
    elif form == 4:
        body = draw(st.integers(0, 2**64).map(str))
    elif form == 5:
        body = repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
        body = body.lstrip("-").split("e")[0]
    else:
        body = draw(digits) + draw(st.sampled_from(["", "." + draw(st.text("0123456789", max_size=6))]))
    return sign + body


printable = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r\n")
gcodeish = st.sampled_from(list(" \t;()*\"'=#%.+-0123456789GMTXYZEFNAgxyz_\\,$") + ["é", "\u2028", "\x0b", "\x0c"])


def free(exclude: str = "", max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(st.one_of(printable, gcodeish).filter(lambda c: c not in exclude), max_size=max_size)


@st.composite
def quoted(draw: st.DrawFn) -> str:
    """`"..."` with `""` as a literal quote; sometimes unclosed."""
    inner = draw(st.lists(st.one_of(free('"', 4), st.just('""')), max_size=3))
    return '"' + "".join(inner) + draw(st.sampled_from(['"', '"', '"', ""]))


@st.composite
def word(draw: st.DrawFn) -> str:
    letter = (
        draw(st.sampled_from("XYZEFIJKRPSTABCDHLQUVW"))
        if draw(st.booleans())
        else draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    )
    letter = draw(cased(letter))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return letter  # a flag
    if kind == 1:
        return letter + draw(blanks) + draw(quoted())
    return letter + draw(blanks) + draw(numbers())


@st.composite
def comment(draw: st.DrawFn, at_end: bool) -> str:
    if at_end and draw(st.booleans()):
        return ";" + draw(free())
    if at_end and draw(st.integers(0, 5)) == 0:
        return "(" + draw(free(")"))  # unclosed: the rest of the line
    return "(" + draw(free(")")) + ")"


@st.composite
def classic_command(draw: st.DrawFn, letters: str = "GMT", numbers: list[str] | None = None) -> str:
    letter = draw(cased(draw(st.sampled_from(letters))))
    if numbers is not None:
        num = draw(st.sampled_from(numbers))
    else:
        numbers = [0, 1, 2, 3, 4, 10, 28, 90, 92, 104, 109, 486, 862, 1234, 999999999999999999, 10**25]
        num = str(draw(st.sampled_from(numbers)))
        num += draw(st.sampled_from(["", "", "", ".1", ".3", ".0", ".", ".05"]))
    return letter + draw(blanks) + draw(st.sampled_from(["", "", "0", "00"])) + num


def checksummed(draw: st.DrawFn, body: str) -> bytes:
    """`body*NN` (right, wrong or out of range) then maybe a `;` comment."""
    raw = body.encode()
    x = ref.xor(raw)
    nn = draw(st.sampled_from([x, x, x ^ draw(st.integers(1, 255)), x + 256]))
    tail = draw(st.sampled_from(["", "", " ", " ;" + "c"]))
    return raw + b"*" + str(nn).encode() + tail.encode()


@st.composite
def word_line(draw: st.DrawFn) -> bytes:
    parts = [draw(blanks)]
    if draw(st.integers(0, 9)) == 0:
        parts.append("%" + draw(blanks))
    if draw(st.integers(0, 3)) == 0:
        parts.append(draw(cased("N")) + draw(st.sampled_from(["", "", " "])) + draw(digits) + draw(blanks))
    if draw(st.integers(0, 5)) != 0:
        parts.append(draw(classic_command()))
    for _ in range(draw(st.integers(0, 6))):
        parts.append(draw(blanks) if parts[-1][-1:].isdigit() else draw(st.sampled_from(["", " "])))
        item = draw(st.integers(0, 9))
        if item == 0:
            parts.append(draw(comment(at_end=False)))
        elif item == 1:
            parts.append(draw(st.sampled_from([",", "$", "@", "1", ".", "-"])))  # unexpected text
        else:
            parts.append(draw(word()))
    body = "".join(parts)
    if draw(st.integers(0, 4)) == 0:
        return checksummed(draw, body)
    if draw(st.booleans()):
        body += draw(blanks) + draw(comment(at_end=True))
    return body.encode()


@st.composite
def text_line(draw: st.DrawFn) -> bytes:
    """Free-text commands (`M117 Hello`) and `M486 A<name>`."""
    if draw(st.integers(0, 3)) == 0:
        body = draw(classic_command("M", ["486"])) + draw(blanks)
        if draw(st.booleans()):
            body += draw(cased("A")) + draw(blanks) + draw(free(";*"))
        else:
            body += draw(word())
    else:
        cmd = draw(st.sampled_from(sorted(ref.TEXT_COMMANDS)))
        body = draw(classic_command("M", [cmd[1:]])) + draw(st.sampled_from(["", " ", "  ", "\t"])) + draw(free(";"))
    if draw(st.integers(0, 3)) == 0:
        return checksummed(draw, body)
    if draw(st.booleans()):
        body += draw(blanks) + ";" + draw(free())
    return body.encode()


ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{1,12}", fullmatch=True)


@st.composite
def shell_value(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            pieces.append("'" + draw(free("'")) + draw(st.sampled_from(["'", "'", "'", ""])))
        elif kind == 1:
            inner = draw(st.lists(st.one_of(free('"\\', 4), st.sampled_from(['\\"', "\\\\", "\\$", "\\a", "\\`"]))))
            pieces.append('"' + "".join(inner) + draw(st.sampled_from(['"', '"', '"', ""])))
        elif kind == 2:
            pieces.append("\\" + draw(st.sampled_from(list(" ;#'\"a\\"))))
        else:
            pieces.append(draw(free(" \t;#'\"\\", 8)))
    return "".join(pieces)


@st.composite
def extended_line(draw: st.DrawFn) -> bytes:
    """Klipper extended commands: `NAME KEY=VALUE ...` with shell quoting."""
    body = draw(blanks) + draw(ident)
    for _ in range(draw(st.integers(0, 4))):
        body += draw(some_blank)
        kind = draw(st.integers(0, 9))
        if kind == 0:
            body += draw(shell_value())  # no '=': reported, kept with an empty value
        else:
            body += draw(ident) + "=" + draw(shell_value())
    if draw(st.integers(0, 5)) == 0:
        return checksummed(draw, body + draw(blanks))
    if draw(st.booleans()):
        body += draw(blanks) + draw(st.sampled_from([";", "#"])) + draw(free())
    return body.encode()


junk_line = st.one_of(
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")),
    st.text(gcodeish, max_size=20).map(lambda t: t.encode()),
)

line = st.one_of(
    word_line(),
    word_line(),
    word_line(),
    text_line(),
    extended_line(),
    st.sampled_from([b"", b" ", b"\t"]),
    junk_line,
)
line_end = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])


@st.composite
def gcode_text(draw: st.DrawFn) -> bytes:
    lines: list[bytes] = draw(st.lists(line, min_size=0, max_size=12))
    ends: list[bytes] = [draw(line_end) for _ in lines]
    unterminated: bool = draw(st.booleans())
    if lines and unterminated:
        ends[-1] = b""  # a last line without a terminator
    return b"".join(ln + end for ln, end in zip(lines, ends, strict=True))


raw_inputs = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(gcodeish | st.sampled_from(["\n", "\r", "\r\n"]), max_size=300).map(lambda t: "".join(t).encode()),
)


# -- the reference against the fast parser --------------------------------------------------------
@MAIN
@given(gcode_text())
@example(b"G1 X1.5 Y-2 E.0461 F+1200 ; move\n")
@example(b"N3 G1 X1*54\nN4 G1 X1*0\r\nM117 Hello *12 ; c\rM486 A3DBenchy.stl ; x\n")
@example(b'EXCLUDE_OBJECT_DEFINE NAME=\'a b\' CENTER=1,2 POLYGON=[[0,0],[1,1]] ; def\n_X a="\\"q" B #c')
@example(b'g01x1e2 (first) Y2 (second)\n%\n(unclosed\nM862.3 P "MK3S"\nM550 P"a ""b"""')
def test_generated_gcode_matches_reference(data: bytes) -> None:
    assert_agrees(data)


@MAIN
@given(raw_inputs)
@example(b"\r\r\n\r")
@example(b"G1 X\xff\xfe;\xc3(\xe9)")
def test_raw_input_matches_reference(data: bytes) -> None:
    assert_agrees(data)


# -- robustness -----------------------------------------------------------------------------------
@SMALL
@given(st.binary(max_size=400) | gcode_text())
def test_lenient_parse_never_raises_and_counts_lines(data: bytes) -> None:
    assume(not data.startswith(b"GCDE"))
    parsed = gcode.read(data)
    assert parsed.table.num_rows == len(ref.split_lines(data))
    assert parsed.summary["lines"] == parsed.table.num_rows
    assert parsed.table.column("line").to_pylist() == list(range(1, parsed.table.num_rows + 1))
    assert parsed.diagnostics_total == len(parsed.diagnostics)
    if parsed.diagnostics:
        with pytest.raises(GcodeParseError):
            gcode.parse(data, strict=True)
    else:
        assert gcode.parse(data, strict=True).num_rows == parsed.table.num_rows


@SMALL
@given(st.binary(max_size=200))
def test_broken_bgcode_raises_only_parse_errors(tail: bytes) -> None:
    """Bytes with the binary G-code magic either decode or raise GcodeParseError, never crash."""
    try:
        gcode.read(b"GCDE" + tail)
    except GcodeParseError:
        pass


# -- threads, piece size and streaming do not change the result ---------------------------------
def as_comparable(parsed: gcode.ParsedGcode) -> tuple:
    cols = {name: parsed.table.column(name).to_pylist() for name in parsed.table.column_names}
    return cols, repr(parsed.summary), parsed.diagnostics


def assert_same_parse(a: tuple, b: tuple, what: str) -> None:
    cols_a, summary_a, diags_a = a
    cols_b, summary_b, diags_b = b
    for name in cols_a:
        for r, (x, y) in enumerate(zip(cols_a[name], cols_b[name], strict=True)):
            assert ref._same(x, y), f"{what}: column {name} row {r + 1}: {x!r} != {y!r}"
    assert summary_a == summary_b, f"{what}: summaries differ"
    assert diags_a == diags_b, f"{what}: diagnostics differ"


@SMALL
@given(gcode_text() | raw_inputs, st.sampled_from([1, 7, 64]), st.sampled_from([1, 2, 4]))
def test_threads_and_chunking_do_not_change_the_result(data: bytes, chunk: int, threads: int) -> None:
    assume(not data.startswith(b"GCDE"))
    whole = as_comparable(gcode.read(data, threads=1, chunk_bytes=1 << 30))
    pieces = as_comparable(gcode.read(data, threads=threads, chunk_bytes=chunk))
    assert_same_parse(whole, pieces, f"threads={threads} chunk_bytes={chunk}")


@SMALL
@given(gcode_text() | raw_inputs, st.sampled_from([1, 7, 64]))
def test_streaming_equals_parse(data: bytes, batch_bytes: int) -> None:
    assume(not data.startswith(b"GCDE"))
    whole = gcode.read(data, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.gcode")
        with open(path, "wb") as f:
            f.write(data)
        reader = gcode.GcodeReader(path, batch_bytes=batch_bytes)
        batches = list(reader)
    names = whole.table.column_names
    streamed = {name: [v for b in batches for v in b.column(name).to_pylist()] for name in names}
    expected = {name: whole.table.column(name).to_pylist() for name in names}
    for name in names:
        assert len(streamed[name]) == len(expected[name]), f"batch_bytes={batch_bytes}: row count"
        for r, (x, y) in enumerate(zip(expected[name], streamed[name], strict=True)):
            assert ref._same(x, y), f"batch_bytes={batch_bytes}: column {name} row {r + 1}: {x!r} != {y!r}"
    assert reader.diagnostics == whole.diagnostics
