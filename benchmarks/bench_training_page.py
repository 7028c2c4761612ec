"""The Training page on a big logdir: 50 runs x 20 tags x 100,000 steps (100M scalar points,
~6 GB of event files), first render and a filter change. No target yet (issue 15): measured
and reported.

Data: written without TensorFlow, byte for byte what `tf.summary.scalar` writes in TF2 (an
Event with wall time, step and a one-element float tensor; the plugin metadata on each tag's
first event only, as TensorFlow's writer does): one template record per tag and step-varint
width is built with tensorboard's protobufs, then every step's wall time, step and value
bytes are filled in with numpy and the payload CRCs computed by CRC linearity
(`insight.curves._tfrecord.crc_rows`). Cached under `INSIGHT_BENCH_CACHE` like
`_curves_data.py`; `--steps` scales it down for a shared machine.

Rows (Streamlit's AppTest of `app_pages/training.py`, caches cleared, imports warmed on the
sample logdir, no GC after each run and long-lived objects frozen, as `insight serve` runs the
app):
- first render: the whole logdir read, curve index, verdicts, the first 24 metric charts.
- filter change: the runs filter set to `run_1.*` (11 runs): the page again, reader memoised.
- process RSS before the first render, after it and after the filter change (`VmRSS`).

Usage: python benchmarks/bench_training_page.py [--runs 50] [--tags 20] [--steps 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _curves_data import cache_root, warm_training_page  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _payload(tag: str, step: int, metadata: bool) -> bytes:
    from tensorboard.compat.proto import event_pb2, tensor_pb2, tensor_shape_pb2

    ev = event_pb2.Event(wall_time=1.7e9, step=step)
    v = ev.summary.value.add(tag=tag)
    v.tensor.CopyFrom(tensor_pb2.TensorProto(dtype=1, tensor_content=bytes(4),
                                             tensor_shape=tensor_shape_pb2.TensorShapeProto()))
    if metadata:
        v.metadata.plugin_data.plugin_name = "scalars"
        v.metadata.data_class = 1
    return ev.SerializeToString()


def _records(tag: str, steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """`(len(steps), record bytes)` uint8: the framed records of one tag, steps of one
    varint width."""
    from insight.curves import _tfrecord as rec
    from insight.curves._event_decode import analyze

    k = max(1, (int(steps[0]).bit_length() + 6) // 7)
    base = _payload(tag, int(steps[0]), False)
    tpl = analyze(base, k)
    assert tpl is not None and tpl.value_pos > 0, tag
    n, length = len(steps), len(base)
    block = np.tile(np.frombuffer(base, np.uint8), (n, 1))
    block[:, 1:9] = walls.astype("<f8").view(np.uint8).reshape(n, 8)
    for j in range(k):
        byte = (steps >> (7 * j)) & 0x7F
        block[:, 10 + j] = byte | (0x80 if j < k - 1 else 0)
    block[:, tpl.value_pos:tpl.value_pos + 4] = values.astype("<f4").view(np.uint8).reshape(n, 4)
    crc = rec.crc_rows(block, base, tpl.varying)
    head = np.frombuffer(length.to_bytes(8, "little")
                         + rec.masked_crc32c(length.to_bytes(8, "little")).to_bytes(4, "little"),
                         np.uint8)
    out = np.empty((n, rec.HEADER + length + rec.FOOTER), np.uint8)
    out[:, :rec.HEADER] = head
    out[:, rec.HEADER:rec.HEADER + length] = block
    out[:, rec.HEADER + length:] = crc.astype("<u4").view(np.uint8).reshape(n, 4)
    return out


def _framed(payload: bytes) -> bytes:
    from insight.curves import _tfrecord as rec

    head = len(payload).to_bytes(8, "little")
    return (head + rec.masked_crc32c(head).to_bytes(4, "little") + payload
            + rec.masked_crc32c(payload).to_bytes(4, "little"))


def big_logdir(runs: int, tags: int, steps: int) -> Path:
    """The cached logdir: `run_<i>/events.out.tfevents.*`, every tag written each step."""
    root = cache_root() / f"training_page_{runs}x{tags}x{steps}"
    if (root / ".complete").exists():
        return root
    from tensorboard.compat.proto import event_pb2

    names = [f"{'val_' if t % 2 else ''}metric_{t // 2:02d}" for t in range(tags)]
    version = _framed(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2")
                      .SerializeToString())
    for r in range(runs):
        folder = root / f"run_{r}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"events.out.tfevents.1700000000.bench.{r}.v2", "wb") as f:
            f.write(version)
            f.write(b"".join(_framed(_payload(t, 0, True)) for t in names))  # step 0, metadata
            bounds = [1, 128, 16384, 2097152]
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                s = np.arange(lo, min(hi, steps + 1), dtype=np.int64)
                if not s.size:
                    break
                x = s.astype(np.float64)
                base = 2 * np.exp(-x / (steps / 5)) + 0.05 * np.sin(x * 0.37 + r)
                walls = 1.7e9 + x * 0.01
                blocks = [_records(t, s, base * (1 + 0.1 * i) + 0.02 * (i % 2) * np.log1p(x),
                                   walls) for i, t in enumerate(names)]
                f.write(np.concatenate(blocks, axis=1).tobytes())  # step by step, tags in turn
    (root / ".complete").write_text("ok\n")
    return root


def page_times(root: Path) -> dict:
    page = warm_training_page(timeout=3600)
    out = {"rss_before": rss_mb()}
    at = page(root)
    start = time.perf_counter()
    at.run()
    out["first"] = time.perf_counter() - start
    assert not at.exception, at.exception
    out["rss_first"] = rss_mb()
    at.text_input(key="train_runs").set_value("run_1.*")
    start = time.perf_counter()
    at.run()
    out["filter"] = time.perf_counter() - start
    assert not at.exception, at.exception
    out["rss_filter"] = rss_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    start = time.perf_counter()
    root = big_logdir(args.runs, args.tags, args.steps)
    made = time.perf_counter() - start
    size = sum(f.stat().st_size for f in root.rglob("*tfevents*")) / 1e9
    points = args.runs * args.tags * args.steps
    print(f"logdir {root}: {size:.2f} GB, {points:,} points ({made:.0f} s to write or find); "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    t = page_times(root)
    print(f"load average {os.getloadavg()[0]:.1f} after", file=sys.stderr)
    print(f"\nTraining page, {args.runs} runs x {args.tags} tags x {args.steps:,} steps "
          f"({points / 1e6:.0f}M points, {size:.2f} GB):\n")
    print("| step | time | points/s | process RSS |")
    print("|---|---:|---:|---:|")
    print(f"| before (imports warm) | | | {t['rss_before']:,.0f} MB |")
    print(f"| first render (read + index + 24 charts) | {t['first']:.1f} s | "
          f"{points / t['first'] / 1e6:.2f}M | {t['rss_first']:,.0f} MB |")
    print(f"| runs filter `run_1.*` | {t['filter']:.2f} s | | {t['rss_filter']:,.0f} MB |")


if __name__ == "__main__":
    main()
