"""The G-code parser on real files and on the bad input users throw at it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import corpus_file, corpus_files, needs_corpus
from threedpai import GcodeParseError, gcode
from threedpai._native import parse_bytes


def column(table: pa.Table, name: str) -> list:
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, pa.string())
    return col.to_pylist()


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as strings, schema metadata dropped, one chunk: for comparing tables."""
    cols = [pc.cast(c, pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names).combine_chunks()


# --- every real file ---------------------------------------------------------------------------


@needs_corpus()
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_every_corpus_file_parses_line_for_line(path: Path) -> None:
    parsed = gcode.read(path)
    t = parsed.table
    assert t.schema.remove_metadata() == gcode.SCHEMA
    t.validate(full=True)  # the core's buffers, taken over as they are, are valid Arrow
    # The metadata JSON (written by the core) is the summary the dict gives, less thumbnail data.
    meta = json.loads(t.schema.metadata[b"threedpai.summary"])
    assert meta == json.loads(json.dumps(gcode._public_summary(parsed.summary)))
    assert meta["lines"] == t.num_rows and meta["diagnostics"] == parsed.diagnostics_total
    if path.suffix == ".bgcode":
        assert parsed.summary["container"] == "bgcode"
        assert t.num_rows > 1000
        return
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)  # bytes split on \n, \r\n and \r only, like the parser
    assert t.num_rows == len(lines)
    starts = np.cumsum([0] + [len(x) for x in lines[:-1]])
    assert np.array_equal(t.column("offset").to_numpy(), starts)
    assert column(t, "line") == list(range(1, len(lines) + 1))
    # Every line with a G0/G1 word in the text has the command (an independent, regex reading).
    moves = [i for i, x in enumerate(lines) if re.match(rb"\s*(N\d+\s*)?[Gg]0*1(?![\d.])", x)]
    cmds = column(t, "command")
    assert all(cmds[i] == "G1" for i in moves)


@needs_corpus()
def test_word_values_equal_python_float_on_a_prusaslicer_file() -> None:
    path = corpus_file("public/gp_prusaslicer_2.6.1_benchy.gcode")  # many E.0461-style numbers
    t = gcode.parse(path)
    lines = path.read_bytes().splitlines()
    for letter in "XYZEF":
        values = t.column(letter).to_pylist()
        for i, line in enumerate(lines):
            code = line.split(b";")[0]
            m = re.search(rb"\b" + letter.encode() + rb"(-?\d*\.?\d+)", code)
            if code.startswith(b"G1") and m:
                assert values[i] == float(m.group(1)), (i + 1, line)


# --- checksums, line numbers, strict mode ---------------------------------------------------------


def xor(body: bytes) -> int:
    out = 0
    for b in body:
        out ^= b
    return out


@needs_corpus()
def test_checksums_are_validated_and_the_bad_line_is_kept() -> None:
    path = corpus_file("public/cncjs_special_fields_N_checksum.gcode")
    parsed = gcode.read(path)
    t = parsed.table
    lines = path.read_bytes().splitlines()
    expected = []
    for line in lines:
        if b"*" in line:
            body, _, rest = line.partition(b"*")
            expected.append(xor(body) == int(re.match(rb"\d+", rest).group()))
        else:
            expected.append(None)
    assert column(t, "checksum_ok") == expected
    assert expected.count(False) == 1
    bad = expected.index(False)
    assert column(t, "X")[bad] == 3.0  # flagged, not dropped
    assert column(t, "n") == list(range(1, len(lines) + 1))
    assert [d["line"] for d in parsed.diagnostics] == [bad + 1]
    with pytest.raises(GcodeParseError, match=rf"{path.name}:{bad + 1}: checksum") as err:
        gcode.read(path, strict=True)
    assert isinstance(err.value, ValueError) and err.value.line == bad + 1


# --- the verbose layer --------------------------------------------------------------------------


@needs_corpus()
def test_prusaslicer_layers_z_and_features() -> None:
    path = corpus_file("sliced/ps_mk3s_box20_0.20_15gyroid.gcode")
    text = path.read_text()
    zs = [float(z) for z in re.findall(r"^;Z:([\d.]+)$", text, flags=re.M)]
    parsed = gcode.read(path)
    s, t = parsed.summary, parsed.table
    assert s["layer_source"] == "markers"
    assert s["layer_count"] == text.count("\n;LAYER_CHANGE") == len(zs)
    assert [layer[0] for layer in s["layers"]] == zs
    layer, z = column(t, "layer"), column(t, "z")
    first = text.splitlines().index(";LAYER_CHANGE")
    assert layer[first - 1] is None and layer[first] == 0 and z[first] == zs[0]
    assert max(x for x in layer if x is not None) == len(zs) - 1
    assert {"External perimeter", "Perimeter", "Internal infill"} <= set(s["features"])
    roles = dict(zip(column(t, "feature"), column(t, "role"), strict=True))
    assert roles["External perimeter"] == "outer_wall" and roles["Internal infill"] == "infill"


@needs_corpus()
def test_layers_from_z_when_the_file_has_no_markers() -> None:
    path = corpus_file("sliced/s3_box20_0.3_20.gcode")
    parsed = gcode.read(path)
    assert parsed.summary["layer_source"] == "z"
    # Independent count: distinct Z heights (absolute mode) at which E increases.
    z = e = 0.0
    layers: list[float] = []
    absolute_e = True
    for line in path.read_text().splitlines():
        code = line.split(";")[0].split()
        if not code:
            continue
        if code[0] == "M83":
            absolute_e = False
        if code[0] == "G92":
            for w in code[1:]:
                if w[0] == "E":
                    e = float(w[1:])
        if code[0] in ("G0", "G1"):
            words = {w[0]: float(w[1:]) for w in code[1:] if len(w) > 1}
            z = words.get("Z", z)
            if "E" in words:
                new_e = words["E"] if absolute_e else e + words["E"]
                if new_e > e and (not layers or z > layers[-1] + 0.01):
                    layers.append(z)
                e = new_e
    assert len(layers) > 50
    assert [layer[0] for layer in parsed.summary["layers"]] == layers


@needs_corpus()
def test_objects_from_m486_and_exclude_object() -> None:
    t = gcode.parse(corpus_file("public/cop_prusaslicer_2.4_m486.gcode"))
    objects = column(t, "object")
    commands = column(t, "command")
    s_values = column(t, "S")
    for i, cmd in enumerate(commands):
        if cmd == "M486" and s_values[i] is not None and s_values[i] >= 0:
            assert objects[i] is not None
            assert objects[i + 1] == objects[i]
        if cmd == "M486" and s_values[i] == -1:
            assert objects[i] is None
    assert len({o for o in objects if o}) == 4

    path = corpus_file("public/mk_orcaslicer_2.3.0b2_k1max_klipper.gcode")
    t = gcode.parse(path)
    names = set(re.findall(r"^EXCLUDE_OBJECT_START NAME=(\S+)", path.read_text(), flags=re.M))
    assert names and set(column(t, "object")) - {None} >= names


@needs_corpus()
def test_klipper_extended_commands_keep_their_parameters() -> None:
    path = corpus_file("public/mk_crealityprint_5.1.4_k1max.gcode")
    t = gcode.parse(path)
    expected = [int(a) for a in re.findall(r"^SET_VELOCITY_LIMIT ACCEL=(\d+)", path.read_text(), flags=re.M)]
    got = [
        int(dict(p)["ACCEL"])
        for c, p in zip(column(t, "command"), column(t, "params"), strict=True)
        if c == "SET_VELOCITY_LIMIT" and p and "ACCEL" in dict(p)
    ]
    assert got == expected and len(got) > 100


@needs_corpus()
def test_binary_gcode_reads_like_text() -> None:
    parsed = gcode.read(corpus_file("public/mk_prusaslicer_2.9.1.bgcode"))
    s, t = parsed.summary, parsed.table
    assert (s["producer"], s["producer_version"]) == ("PrusaSlicer", "2.9.1")
    meta = {(block, k): v for block, k, v in s["bgcode_metadata"]}
    assert meta[("printer", "printer_model")] == "COREONE"
    h, m, sec = re.fullmatch(
        r"(?:(\d+)h )?(?:(\d+)m )?(\d+)s", meta[("print", "estimated printing time (normal mode)")]
    ).groups()
    assert s["estimated_time_s"] == int(h or 0) * 3600 + int(m or 0) * 60 + int(sec)
    settings = dict(s["settings"])
    assert settings["layer_height"] == meta[("slicer", "layer_height")] and len(settings) > 100
    assert s["flavour"] == meta[("slicer", "gcode_flavor")].lower()
    magic = {"png": b"\x89PNG", "qoi": b"qoif", "jpg": b"\xff\xd8"}
    assert s["thumbnails"] and all(th["data"].startswith(magic[th["format"]]) for th in s["thumbnails"])
    comments = column(t, "comment")
    assert s["layer_count"] == comments.count("LAYER_CHANGE") > 10
    assert s["commands"]["G1"] == column(t, "command").count("G1") > 10000


# --- in-memory, streaming and threads give the same rows -------------------------------------------


@needs_corpus()
def test_reader_threads_and_bytes_agree_with_parse() -> None:
    path = corpus_file("public/mk_orcaslicer_2.3.0b2_k1max_klipper.gcode")
    whole = gcode.read(path)
    reference = plain(whole.table)
    assert plain(gcode.parse(path, threads=1)).equals(reference)
    assert plain(gcode.parse(path.read_bytes())).equals(reference)
    small = parse_bytes(path.read_bytes(), "x", 2, 50_000)
    assert len(small["batches"]) > 10
    reader = gcode.GcodeReader(path, batch_bytes=100_000)
    batches = list(reader)
    assert len(batches) > 10
    for b in batches:
        b.validate(full=True)
    assert plain(pa.Table.from_batches(batches)).equals(reference)
    assert reader.summary is not None
    for key in ("layer_count", "layers", "features", "objects", "producer", "commands", "settings"):
        assert reader.summary[key] == whole.summary[key], key


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 1000,
        bytes(range(256)) * 50,
        b"G1 X" + b"9" * 400 + b".5 Y" + b"1" * 400,
        b"G1 X1 (unclosed\nM117 \xff\xfe bad utf8\nSET_X NAME='unterminated\nG1 Xnan Yinf\n",
        b"G1 X1\r\rG1 X2\r\n\r\n;",
    ],
    ids=["empty", "nul", "all-bytes", "huge-numbers", "unbalanced", "odd-endings"],
)
def test_bad_input_never_crashes_and_is_reported(data: bytes) -> None:
    parsed = gcode.read(data)
    assert parsed.table.num_rows == len(data.splitlines())
    parsed.table.validate(full=True)  # strings are UTF-8 whatever the input bytes were
    for d in parsed.diagnostics:
        assert 1 <= d["line"] <= parsed.table.num_rows and d["message"]


def test_a_20_mb_line() -> None:
    data = b"G1 X1 ;" + b"x" * (20 << 20) + b"\nG1 X2\n"
    t = gcode.parse(data)
    assert t.num_rows == 2 and column(t, "X") == [1.0, 2.0]
    assert len(column(t, "comment")[0]) == 20 << 20


def test_lenient_reports_lines_strict_raises() -> None:
    data = b"G1 X1\nG1 X2 (oops\nG1 X3\n"
    parsed = gcode.read(data)
    assert [(d["line"], d["code"]) for d in parsed.diagnostics] == [(2, "unbalanced-paren")]
    assert column(parsed.table, "X") == [1.0, 2.0, 3.0]
    with pytest.raises(GcodeParseError, match="<bytes>:2: '\\(' comment is not closed"):
        gcode.read(data, strict=True)


@needs_corpus()
def test_truncated_or_corrupt_bgcode_raises_a_parse_error(tmp_path: Path) -> None:
    data = corpus_file("public/mk_prusaslicer_2.9.1.bgcode").read_bytes()
    cut = tmp_path / "cut.bgcode"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GcodeParseError, match="cut.bgcode: binary G-code"):
        gcode.read(cut)
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    with pytest.raises(ValueError, match="(?i)crc|decompress|block"):
        gcode.read(bytes(flipped))


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="nope.gcode"):
        gcode.read(tmp_path / "nope.gcode")


def test_role_normalization_covers_the_slicers_labels() -> None:
    cases = {
        "External perimeter": "outer_wall",
        "WALL-OUTER": "outer_wall",
        "Outer wall": "outer_wall",
        "Perimeter": "inner_wall",
        "WALL-INNER": "inner_wall",
        "Overhang perimeter": "overhang_wall",
        "Internal infill": "infill",
        "FILL": "infill",
        "Sparse infill": "infill",
        "Solid infill": "solid_infill",
        "Top solid infill": "top_surface",
        "SKIN": "top_surface",
        "Bottom surface": "bottom_surface",
        "Bridge infill": "bridge",
        "Gap fill": "gap_fill",
        "Support material interface": "support_interface",
        "SUPPORT": "support",
        "Skirt/Brim": "skirt_brim",
        "Wipe tower": "wipe_tower",
        "Ironing": "ironing",
        "Custom": "custom",
        "mystery": "other",
    }
    assert {k: gcode.role_of(k) for k in cases} == cases


@needs_corpus()
@pytest.mark.parametrize(
    "name",
    [
        "sliced/ps_mk3s_box20_0.20_15gyroid.gcode",  # prusaslicer_config block
        "public/cop_prusaslicer_2.3.3.gcode",  # trailing settings without block markers
        "public/mk_orcaslicer_2.3.0b2_k1max_klipper.gcode",  # CONFIG_BLOCK_START
    ],
)
def test_embedded_settings_equal_the_files_own_lines(name: str) -> None:
    path = corpus_file(name)
    settings = dict(gcode.summary(path)["settings"])
    lines = re.findall(r"^; (\w+) = (.*)$", path.read_text(), flags=re.M)
    assert len(settings) > 100
    for key in ("layer_height", "nozzle_diameter", "filament_diameter"):
        assert settings[key] == [v for k, v in lines if k == key][-1].strip()


@needs_corpus()
def test_cura_setting3_block() -> None:
    settings = dict(gcode.summary(corpus_file("public/cop_cura_4.10_reprap.gcode"))["settings"])
    assert len(settings) > 20 and "layer_height" in settings


@needs_corpus()
def test_estimates_equal_the_klipper_reference_tables_slicer_column() -> None:
    import csv

    ref = corpus_file("../klipper-reference/reference.csv")
    with ref.open() as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    checked = 0
    for name, row in rows.items():
        if not row["slicer_estimate_s"]:
            continue
        path = ref.parent.parent / "corpus" / row["corpus"] / name
        estimate = gcode.summary(path)["estimated_time_s"]
        assert estimate == pytest.approx(float(row["slicer_estimate_s"]), abs=1.0), name
        checked += 1
    assert checked >= 20


@needs_corpus()
def test_reader_takes_a_compressed_file_object(tmp_path: Path) -> None:
    import gzip

    path = corpus_file("public/cop_prusaslicer_2.4_m486.gcode")
    packed = tmp_path / "x.gcode.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with gzip.open(packed, "rb") as f:
        reader = gcode.GcodeReader(f, batch_bytes=64_000)
        batches = list(reader)
    assert len(batches) > 2 and reader.bytes_read == path.stat().st_size
    assert plain(pa.Table.from_batches(batches)).equals(plain(gcode.parse(path)))


@needs_corpus()
def test_m73_progress_marks() -> None:
    path = corpus_file("sliced/ps_mk3s_box20_0.20_15gyroid.gcode")
    text = path.read_text()
    remaining = [int(r) for r in re.findall(r"^M73 P\d+ R(\d+)", text, flags=re.M)]  # normal mode (Q/S: silent)
    s = gcode.summary(path)
    assert s["progress_marks"] == len(re.findall(r"^M73 ", text, flags=re.M)) > 10
    assert s["progress_total_min"] == max(remaining)
