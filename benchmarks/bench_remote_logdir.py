"""A remote logdir (`s3://`) read by insight, against the same logdir read locally and against
TensorBoard's own loader on the same S3 server.

Data: 200 event files (200 runs x 5 tags x 1,500 steps = 1.5M scalar points, ~108 MB),
written once with `tf.summary` and cached (`benchmarks/_curves_data.py`). The S3 server is
moto's (`ThreadedMotoServer`, real HTTP on loopback) started in this process; the logdir is
uploaded to a fresh bucket. Every measurement runs in a fresh child process (imports done
before the clock starts), in rotating order, `--repeat` times; the table gives medians, the
points read per second and the child's peak RSS. The S3 server's own CPU (moto serving
the bytes, in this process) shares the machine with the reader: remote rows are bounded by
it, so the ratio to the local read is an upper bound on what a real bucket costs.

Rows:
- insight s3: `insight.read_scalars("s3://bucket/runs")`: one listing, then the 200 files
  fetched concurrently (`cat_ranges`) and decoded by the same reader as local files.
- insight local: `insight.read_scalars(local_dir)`, page cache warm.
- insight s3, one batch: as `insight s3` with every range fetched before any is parsed
  (no overlap of download and decoding).
- floor: s3fs `cat_ranges` of every object whole, nothing parsed: the transfer alone.
- insight s3 re-read: `Logdir.refresh(relist=True)` on the same logdir, nothing appended:
  one listing, no bytes fetched (what a live tail costs per look).
- insight s3 tail: `Logdir.refresh(relist=True)` after 10 files grew by 1,000 points each
  (objects re-uploaded whole, as TensorFlow's S3 writer does): only the new ranges fetched.
- TensorBoard s3: `plugin_event_multiplexer.EventMultiplexer` (`tensors: 0`: every point
  kept, no sampling), `AddRunsFromDirectory("s3://...")`, `Reload()`, every tensor read. TF
  2.21's `tf.io.gfile` has no `s3://`, so the child runs TensorBoard on its
  `tensorflow_stub` (the `tensorboard.compat.notf` switch TensorBoard's own no-TF build
  uses), whose gfile reads S3 with boto3 (`S3_ENDPOINT`).
- TensorBoard local: the same loader on the local copy (its decoding cost alone).

Usage: python benchmarks/bench_remote_logdir.py [--repeat 3] [--runs 200] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

TAGS = 5
MODES = ("insight-s3", "insight-local", "insight-s3-reread", "s3-fetch-floor",
         "insight-s3-one-batch")
SLOW = ("tensorboard-s3", "tensorboard-local")
TITLES = {"insight-s3": "insight s3", "insight-local": "insight local",
          "s3-fetch-floor": "floor: s3fs cat_ranges of every file, no parsing",
          "insight-s3-one-batch": "insight s3, one batch (all fetched, then parsed)",
          "insight-s3-reread": "insight s3 re-read (nothing new)",
          "insight-s3-tail": "insight s3 tail (10 files +1,000 points)",
          "tensorboard-s3": "TensorBoard s3 (stub gfile, boto3)",
          "tensorboard-local": "TensorBoard local"}


# -- the children ---------------------------------------------------------------------------

def _peak_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child_insight(mode: str, where: str) -> dict:
    import s3fs  # noqa: F401 - imports are not the reader's time (TensorBoard's are done too)

    from insight.curves.logdir import Logdir, read_scalars
    from insight.model.samples import get_sample

    read_scalars(get_sample("digits_cnn").logdir)  # the decoder's own imports, warm
    base = _peak_mb()
    if mode == "s3-fetch-floor":
        from insight.curves.remote import listing
        from insight.remote import filesystem

        t = time.perf_counter()
        files = listing(where).files
        fs, _ = filesystem(where)
        got = fs.cat_ranges(list(files), [0] * len(files), [s for s, _ in files.values()])
        return {"seconds": time.perf_counter() - t, "points": sum(map(len, got)),
                "base_mb": base, "bytes": True}
    if mode == "insight-s3-one-batch":
        import insight.curves.remote as remote

        remote.FETCH_BATCH_BYTES = 1 << 30
    if mode in ("insight-s3", "insight-local", "insight-s3-one-batch"):
        t = time.perf_counter()
        points = len(read_scalars(where))
        return {"seconds": time.perf_counter() - t, "points": points, "base_mb": base}
    logs = Logdir(where)
    logs.refresh()
    if mode == "insight-s3-tail":  # the parent appends once told we are ready
        print("READY", flush=True)
        sys.stdin.readline()
    t = time.perf_counter()
    points = logs.refresh(relist=True)
    return {"seconds": time.perf_counter() - t, "points": points, "base_mb": base}


def _child_tensorboard(where: str) -> dict:
    import types

    # TensorBoard's own switch to its TF stub (its no-TensorFlow build), whose gfile reads s3://
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.backend.event_processing.event_accumulator import TENSORS
    from tensorboard.util import tensor_util

    if where.startswith("s3://"):
        os.environ["S3_ENDPOINT"] = os.environ["AWS_ENDPOINT_URL"]
    base = _peak_mb()
    t = time.perf_counter()
    mux = pem.EventMultiplexer(size_guidance={TENSORS: 0})
    mux.AddRunsFromDirectory(where)
    mux.Reload()
    points = 0
    for run, tags in mux.PluginRunToTagToContent("scalars").items():
        for tag in tags:
            points += sum(tensor_util.make_ndarray(e.tensor_proto).size
                          for e in mux.Tensors(run, tag))
    return {"seconds": time.perf_counter() - t, "points": points, "base_mb": base}


def child(mode: str, where: str) -> None:
    out = (_child_tensorboard(where) if mode.startswith("tensorboard") else
           _child_insight(mode, where))
    out["peak_mb"] = _peak_mb()
    print("RESULT " + json.dumps(out), flush=True)


# -- the parent -----------------------------------------------------------------------------

def start_moto() -> tuple[object, dict[str, str]]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    return server, env


def _client(env: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def upload(local: Path, bucket: str, env: dict[str, str]) -> list[str]:
    client = _client(env)
    client.create_bucket(Bucket=bucket)
    files = sorted(p for p in local.rglob("*") if p.is_file() and "tfevents" in p.name)
    keys = [f"runs/{p.relative_to(local).as_posix()}" for p in files]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda pk: client.upload_file(str(pk[0]), bucket, pk[1]),
                      zip(files, keys, strict=True)))
    return keys


def grow(local: Path, bucket: str, keys: list[str], env: dict[str, str]) -> None:
    """Re-upload 10 objects with 1,000 more points each (200 steps x 5 tags): the records of
    their own last 200 steps appended again, byte for byte (valid records, new points)."""
    client = _client(env)
    for key in keys[:10]:
        data = (local / key.split("/", 1)[1]).read_bytes()
        client.put_object(Bucket=bucket, Key=key, Body=data + _last_records(data, 200 * TAGS))


def _last_records(data: bytes, n: int) -> bytes:
    """The bytes of the last `n` complete TFRecords of `data` (found by walking lengths)."""
    starts, pos = [], 0
    while pos + 12 <= len(data):
        starts.append(pos)
        pos += int.from_bytes(data[pos:pos + 8], "little") + 16
    return data[starts[-n]:]


def run_child(mode: str, where: str, env: dict[str, str], on_ready=None) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", mode, where],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout:
        if line.startswith("READY"):
            on_ready()
            proc.stdin.write("go\n")
            proc.stdin.flush()
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    proc.wait()
    if proc.returncode or result is None:
        raise SystemExit(f"{mode} failed (exit code {proc.returncode})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tb-repeat", type=int, default=1,
                        help="TensorBoard's rows (minutes each). Defaults to 1.")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "WHERE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from _curves_data import synthetic_logdir

    local = synthetic_logdir(args.runs, TAGS, args.steps)
    server, env = start_moto()
    print(f"load average before: {os.getloadavg()}", flush=True)
    t = time.perf_counter()
    keys = upload(local, "bench-runs", env)
    url = "s3://bench-runs/runs"
    size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    print(f"{len(keys)} event files ({size / 2**20:.0f} MiB) uploaded in "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    every = (*MODES, "insight-s3-tail", *SLOW)
    where = {m: url if "s3" in m else str(local) for m in every}
    results: dict[str, list[dict]] = {m: [] for m in every}
    for rep in range(max(args.repeat, args.tb_repeat)):
        fast = MODES[rep % len(MODES):] + MODES[:rep % len(MODES)] if rep < args.repeat else ()
        for mode in (*fast, *(SLOW if rep < args.tb_repeat else ())):
            results[mode].append(run_child(mode, where[mode], env))
            r = results[mode][-1]
            print(f"  rep {rep + 1} {mode}: {r['seconds']:.2f} s, {r['points']:,} points, "
                  f"peak {r['peak_mb']:.0f} MB", flush=True)
    # the tail last: it changes the bucket
    bucket = f"bench-tail-{os.getpid()}"
    upload(local, bucket, env)
    results["insight-s3-tail"].append(run_child(
        "insight-s3-tail", f"s3://{bucket}/runs", env, lambda: grow(local, bucket, keys, env)))
    server.stop()
    load = os.getloadavg()
    local_s = statistics.median(r["seconds"] for r in results["insight-local"])
    print(f"\n{args.runs} event files, {args.runs * TAGS * args.steps:,} points, "
          f"medians of {args.repeat} (tail: 1, TensorBoard: {args.tb_repeat}); load average "
          "after: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| reader | seconds | points (bytes) | points/s | vs insight local | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for mode, rs in results.items():
        if not rs:
            continue
        s = statistics.median(r["seconds"] for r in rs)
        points = rs[0]["points"]
        rate = ("-" if points <= 10_000 or "bytes" in rs[0] else
                f"{points / s / 1e6:.2f}M" if points / s >= 1e5 else f"{points / s / 1e3:.1f}k")
        shown = f"{points / 2**20:.0f} MiB" if "bytes" in rs[0] else f"{points:,}"
        print(f"| {TITLES[mode]} | {s:.3f} | {shown} | {rate} | {s / local_s:.2f}x | "
              f"{max(r['peak_mb'] for r in rs):.0f} (imports {rs[0]['base_mb']:.0f}) |")


if __name__ == "__main__":
    main()
