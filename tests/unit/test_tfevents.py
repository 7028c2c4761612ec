"""The event-file reader: values read equal values written (TF2 tensors, simple_value,
float_val/double_val, histograms), tensorboardX files, tbparse on a real Keras logdir, and
every kind of damage: truncated tail, flipped bytes, empty file, zero-length record, huge
declared length, non-event files."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest

from insight.curves import _tfrecord as rec
from insight.curves.logdir import Logdir, read_histograms, read_scalars
from insight.curves.tfevents import EventFileReader

from . import _events as ev

REPO = Path(__file__).resolve().parents[2]
DIGITS_LOGS = REPO / "sample_models" / "digits_cnn" / "logs"
STEPS = [0, 1, 2, 127, 128, 300, 16383, 16384, 2_097_152, 2**40, -5]


def _read(path: Path) -> EventFileReader:
    r = EventFileReader(path)
    r.read()
    return r


# -- values read equal values written ---------------------------------------------------------

@pytest.fixture(scope="module")
def tf_logdir(tmp_path_factory) -> tuple[Path, dict]:
    """Scalars (varint lengths 1..10 bytes, NaN, +-Inf) and histograms via tf.summary."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("tf_logs")
    rng = np.random.default_rng(0)
    values = {"loss": rng.normal(size=len(STEPS)).astype(np.float32),
              "acc": np.array([0.5, np.nan, np.inf, -np.inf, 1, 2, 3, 4, 5, 6, 7], np.float32)}
    hist = rng.normal(size=(3, 500))
    writer = tf.summary.create_file_writer(str(root / "train"))
    with writer.as_default():
        for i, step in enumerate(STEPS):
            for tag, v in values.items():
                tf.summary.scalar(tag, v[i], step=step)
        for i in range(3):
            tf.summary.histogram("w", hist[i], step=i)
    writer.close()
    return root, {"values": values, "hist": hist}


def test_tf2_tensor_scalars_read_back_exactly(tf_logdir):
    root, written = tf_logdir
    df = read_scalars(root)
    assert set(df.run) == {"train"}
    for tag, values in written["values"].items():
        got = df[df.tag == tag]
        assert got.step.tolist() == STEPS
        np.testing.assert_array_equal(got.value.to_numpy(), values.astype(np.float64))
        assert got.wall_time.between(time.time() - 600, time.time() + 1).all()


def test_tf2_tensor_histograms_read_back(tf_logdir):
    root, written = tf_logdir
    h = read_histograms(root)
    assert sorted(h.step.unique()) == [0, 1, 2]
    for step in range(3):
        b = h[h.step == step]
        assert b["count"].sum() == pytest.approx(500)
        assert b.left.min() == pytest.approx(written["hist"][step].min())
        assert b.right.max() == pytest.approx(written["hist"][step].max())


@pytest.mark.parametrize("encoding", ["content", "float_val", "double_val", "simple"])
def test_every_scalar_encoding(tmp_path, encoding):
    values = [1.5, -2.25, float("nan"), float("inf"), 1e-30]
    ev.write(tmp_path / "events.out.tfevents.1", [ev.file_version()] + [
        ev.scalar("m", s, v, encoding=encoding) for s, v in zip(STEPS, values, strict=False)])
    s = _read(tmp_path / "events.out.tfevents.1").scalars()["m"]
    dtype = np.float64 if encoding == "double_val" else np.float32
    np.testing.assert_array_equal(s.value, np.array(values, dtype).astype(np.float64))
    assert s.step.tolist() == STEPS[:5]
    assert s.wall_time.tolist() == [1_700_000_000.0 + st for st in STEPS[:5]]


def test_metadata_only_on_first_event_and_mixed_layouts(tmp_path):
    """Tensors without metadata count once their tag has shown the scalars plugin (also when
    that comes later in the file); thousands of records mix fast-path and protobuf layouts."""
    payloads = [ev.scalar("late", 0, 9.0, metadata=False)]
    expected = {"a": [], "late": [(0, 9.0)], "bb": []}
    for step in range(1, 3000):
        payloads.append(ev.scalar("a", step, step * 0.5, metadata=step == 1))
        payloads.append(ev.scalar("bb", step, -step, encoding="simple"))
        expected["a"].append((step, step * 0.5))
        expected["bb"].append((step, -step))
        if step == 2000:
            payloads.append(ev.scalar("late", step, 1.0))
            expected["late"].append((step, 1.0))
        if step % 700 == 0:
            payloads.append(ev.legacy_histogram("h", step, np.arange(10.0)))
    ev.write(tmp_path / "events.out.tfevents.2", payloads)
    r = _read(tmp_path / "events.out.tfevents.2")
    got = r.scalars()
    for tag, pts in expected.items():
        assert list(zip(got[tag].step.tolist(), got[tag].value.tolist(), strict=True)) == pts
    assert [h.step for h in r.histograms()["h"]] == [700, 1400, 2100, 2800]
    assert r.damaged == 0


def test_tensorboardx_files(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "tbx")) as w:
        for step in range(50):
            w.add_scalar("loss", 1.0 / (step + 1), step)
            w.add_scalar("val/loss", 2.0 / (step + 1), step)
        w.add_histogram("weights", np.arange(100.0), 3)
    df = read_scalars(tmp_path)
    loss = df[df.tag == "loss"]
    assert loss.step.tolist() == list(range(50))
    np.testing.assert_allclose(loss.value, [1.0 / (s + 1) for s in range(50)], rtol=1e-6)
    assert set(df.tag) == {"loss", "val/loss"}
    h = read_histograms(tmp_path)
    assert h["count"].sum() == 100 and set(h.step) == {3}


def test_tbparse_agrees_on_a_keras_tensorboard_logdir():
    from tbparse import SummaryReader

    ours = read_scalars(DIGITS_LOGS)
    theirs = SummaryReader(str(DIGITS_LOGS), extra_columns={"dir_name"}).tensors
    scalar = theirs.value.map(lambda v: np.ndim(v) == 0 and not isinstance(v, bytes))
    theirs = theirs[scalar]  # tbparse's .tensors also holds histograms and byte strings
    assert len(ours) == len(theirs) == 70
    a = ours.assign(run=ours.run.astype(str), tag=ours.tag.astype(str)).sort_values(
        ["run", "tag", "step"]).reset_index(drop=True)
    b = theirs.rename(columns={"dir_name": "run"}).sort_values(["run", "tag", "step"]) \
        .reset_index(drop=True)
    assert a.run.tolist() == b.run.tolist() and a.tag.tolist() == b.tag.tolist()
    assert a.step.tolist() == b.step.tolist()
    np.testing.assert_array_equal(a.value.to_numpy(), b.value.astype(np.float64).to_numpy())


# -- damage -----------------------------------------------------------------------------------

def _three_tags(n: int = 300) -> list[bytes]:
    return [ev.file_version()] + [ev.scalar(t, s, s * 0.1) for s in range(1, n + 1)
                                  for t in ("x", "y", "z")]


def test_truncated_tail_then_appended(tmp_path):
    """A run still being written: the incomplete last record waits; the next read picks up
    exactly the new points."""
    data = b"".join(ev.record(p) for p in _three_tags())
    path = tmp_path / "events.out.tfevents.3"
    cut = len(data) - 10
    path.write_bytes(data[:cut])
    r = EventFileReader(path)
    assert r.read() == 899
    assert r.pending > 0 and r.damaged == 0
    with open(path, "ab") as f:
        f.write(data[cut:] + ev.record(ev.scalar("x", 301, 5.0)))
    assert r.read() == 2
    assert r.scalars()["x"].step[-2:].tolist() == [300, 301]
    assert r.pending == 0 and r.offset == path.stat().st_size


def test_flipped_payload_byte_skips_that_record(tmp_path):
    payloads = _three_tags()
    data = bytearray(b"".join(ev.record(p) for p in payloads))
    at = len(b"".join(ev.record(p) for p in payloads[:400])) + 20  # inside record 400's payload
    data[at] ^= 0x40
    (tmp_path / "events.out.tfevents.4").write_bytes(bytes(data))
    r = _read(tmp_path / "events.out.tfevents.4")
    assert r.damaged == 1
    assert sum(len(s) for s in r.scalars().values()) == 899
    assert "CRC" in r.notes[0]


@pytest.mark.parametrize("where", [0, 3, 9])  # the length's bytes and its CRC's
def test_flipped_header_byte_resyncs(tmp_path, where):
    payloads = _three_tags()
    data = bytearray(b"".join(ev.record(p) for p in payloads))
    at = len(b"".join(ev.record(p) for p in payloads[:500])) + where
    data[at] ^= 0x01
    (tmp_path / "events.out.tfevents.5").write_bytes(bytes(data))
    r = _read(tmp_path / "events.out.tfevents.5")
    assert r.damaged >= 1
    assert sum(len(s) for s in r.scalars().values()) == 899  # only the damaged one is lost
    assert "corrupt record header" in " ".join(r.notes)


def test_empty_file_and_zero_length_record(tmp_path):
    (tmp_path / "a" / "events.out.tfevents.empty").parent.mkdir()
    (tmp_path / "a" / "events.out.tfevents.empty").write_bytes(b"")
    ev.write(tmp_path / "b" / "events.out.tfevents.zero",
             [b"", ev.scalar("m", 1, 1.0), b""])
    logs = Logdir(tmp_path)
    assert logs.refresh() == 1
    df = logs.scalars()
    assert df.run.tolist() == ["b"] and df.value.tolist() == [1.0]
    assert logs.problems() == []


def test_huge_declared_length_does_not_hang(tmp_path):
    ok = ev.record(ev.scalar("m", 1, 1.0))
    head = struct.pack("<Q", 2**62)
    valid = head + struct.pack("<I", rec.masked_crc32c(head)) + b"xyz"
    (tmp_path / "events.out.tfevents.6").write_bytes(ok + valid)
    start = time.perf_counter()
    r = _read(tmp_path / "events.out.tfevents.6")
    assert time.perf_counter() - start < 2
    assert r.points() == 1 and r.damaged == 0 and r.pending == len(valid)
    # the same length with a broken CRC: damage, skipped, the record after it still read
    bad = head + b"\0\0\0\0" + ok
    (tmp_path / "events.out.tfevents.7").write_bytes(ok + bad)
    r = _read(tmp_path / "events.out.tfevents.7")
    assert r.points() == 2 and r.damaged == 1


def test_non_event_files_in_a_logdir(tmp_path):
    ev.write(tmp_path / "run" / "events.out.tfevents.8", _three_tags(10))
    (tmp_path / "run" / "notes.txt").write_text("not an event file")
    (tmp_path / "run" / "model.keras").write_bytes(b"PK\x03\x04" + bytes(100))
    garbage = tmp_path / "junk" / "events.out.tfevents.garbage"
    garbage.parent.mkdir()
    garbage.write_bytes(np.random.default_rng(1).bytes(50_000))
    logs = Logdir(tmp_path)
    logs.refresh()
    assert len(logs.scalars()) == 30
    problems = logs.problems()
    assert len(problems) == 1 and problems[0].startswith("junk/events.out.tfevents.garbage")
    assert logs.refresh() == 0  # garbage is not re-scanned and re-counted on every refresh


def test_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "events.out.tfevents.9"
    ev.write(path, _three_tags(20))
    r = EventFileReader(path)
    assert r.read() == 60
    ev.write(path, _three_tags(5))
    assert r.read() == 15 and r.points() == 15


def test_crc_rows_matches_the_c_implementation():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, 61, dtype=np.uint8)
    pos = np.array([0, 1, 7, 30, 59, 60])
    block = np.tile(base, (200, 1))
    block[:, pos] = rng.integers(0, 256, (200, len(pos)))
    want = [rec.masked_crc32c(bytes(row)) for row in block]
    assert rec.crc_rows(block, bytes(base), pos).tolist() == want


def test_several_values_per_event(tmp_path):
    """TF1's merged summaries: one event per step holding every tag (the protobuf path)."""
    from tensorboard.compat.proto import event_pb2

    payloads = []
    for step in range(1, 2001):
        e = event_pb2.Event(wall_time=1.0 + step, step=step)
        for tag in ("a", "b", "c"):
            e.summary.value.add(tag=tag, simple_value=step * 0.25)
        payloads.append(e.SerializeToString())
    ev.write(tmp_path / "events.out.tfevents.10", payloads)
    start = time.perf_counter()
    got = _read(tmp_path / "events.out.tfevents.10").scalars()
    assert time.perf_counter() - start < 5
    assert sorted(got) == ["a", "b", "c"]
    assert got["c"].value.tolist() == [s * 0.25 for s in range(1, 2001)]


# -- damage on the protobuf path: every payload CRC is checked there too ---------------------

def _check_flip(tmp_path, payloads: list[bytes], index: int, offset: int) -> EventFileReader:
    """Write `payloads`, flip one bit inside record `index`'s payload where it still parses
    (a value's bytes), and read: that record must be skipped and counted."""
    from tensorboard.compat.proto import event_pb2

    path = tmp_path / "events.out.tfevents.flip"
    data = ev.flip(ev.write(path, payloads), payloads, index, offset)
    start = len(b"".join(ev.record(p) for p in payloads[:index])) + 12
    damaged = data[start:start + len(payloads[index])]
    assert damaged != payloads[index]
    event_pb2.Event.FromString(damaged)  # still an Event: only the CRC tells
    path.write_bytes(data)
    r = _read(path)
    assert r.damaged == 1 and "payload CRC mismatch" in r.notes[0]
    logs = Logdir(tmp_path)
    logs.refresh()
    assert logs.problems() == ["events.out.tfevents.flip: 1 damaged record(s) skipped ("
                               + r.notes[0] + ")"]
    return r


@pytest.mark.parametrize("kind", ["legacy", "tensor"])
def test_flipped_histogram_byte_skips_that_histogram(tmp_path, kind):
    """Histograms always take the protobuf path: a damaged bucket must not be drawn."""
    rng = np.random.default_rng(0)
    payloads = [ev.file_version()]
    for step in range(5):
        values = rng.normal(size=200)
        if kind == "legacy":
            payloads.append(ev.legacy_histogram("w", step, values))
        else:
            counts, edges = np.histogram(values, bins=10)
            payloads.append(ev.tensor_histogram("w", step, np.c_[edges[:-1], edges[1:],
                                                                  counts]))
        payloads.append(ev.scalar("loss", step, 1.0 / (step + 1)))
    r = _check_flip(tmp_path, payloads, index=5, offset=-3)  # step 2's last bucket
    assert [h.step for h in r.histograms()["w"]] == [0, 1, 3, 4]
    assert r.scalars()["loss"].step.tolist() == [0, 1, 2, 3, 4]


def test_flipped_merged_summary_byte_skips_that_step(tmp_path):
    """TF1 merged summaries (several values per event) take the protobuf path too."""
    payloads = [ev.merged(step, {"a": step * 0.5, "b": -step, "c": 1.0}) for step in range(50)]
    at = payloads[20].index(b"\x0a\x01b\x15") + 5  # inside tag b's float
    r = _check_flip(tmp_path, payloads, index=20, offset=at)
    got = r.scalars()
    for tag in "abc":
        assert got[tag].step.tolist() == [s for s in range(50) if s != 20]
    assert got["b"].value.tolist() == [-float(s) for s in range(50) if s != 20]


@pytest.mark.parametrize("where", ["first", "last"])
def test_tags_of_one_length_are_told_apart(tmp_path, where):
    """Records of the same length and step width whose tags differ in one byte (at the tag's
    start or end, in a different 8-byte word of the compared layout) are decoded as their own
    series, across the step varint's growth at 128 and 16384 (where the framing's
    prediction of record positions breaks and restarts)."""
    long = "m" * 29
    tags = [c + long if where == "first" else long + c for c in "abc"]
    steps = [*range(1, 6000), *range(16300, 16500)]
    payloads = [ev.file_version()] + [ev.scalar(t, s, s + 0.25 * i, encoding="content")
                                      for s in steps for i, t in enumerate(tags)]
    ev.write(tmp_path / "events.out.tfevents.6", payloads)
    series = _read(tmp_path / "events.out.tfevents.6").scalars()
    assert sorted(series) == sorted(tags)
    for i, t in enumerate(tags):
        assert series[t].step.tolist() == steps
        np.testing.assert_array_equal(series[t].value, np.float32(np.array(steps) + 0.25 * i))


def test_a_record_differing_only_in_its_last_bytes_is_not_taken_for_the_template(tmp_path):
    """Same tag, same length: every other record's plugin name ends differently (the last
    byte of the record), so it is not a scalar and is not read as one."""
    payloads = [ev.file_version()]
    for step in range(1, 3000):
        p = ev.scalar("loss", step, float(step))
        payloads.append(p if step % 2 else p[:-1] + b"z")  # "scalars" -> "scalarz"
    ev.write(tmp_path / "events.out.tfevents.7", payloads)
    r = _read(tmp_path / "events.out.tfevents.7")
    assert r.scalars()["loss"].step.tolist() == list(range(1, 3000, 2))
    assert r.damaged == 0
