"""Opening a remote model (`s3://.../model.keras`): the first open (downloaded into insight's
cache), a second open (a cache hit: one HEAD request) and the same file opened locally.

Data: `keras.applications.MobileNetV2(weights=None)` saved as `.keras` (~14 MB, 156 layers),
uploaded to moto's S3 server (`ThreadedMotoServer`, real HTTP on loopback) started in this
process: its CPU (serving the bytes) shares the machine with the loader, so the download row
is an upper bound on a real bucket's cost on this machine, not a network measurement.

Rows (medians of `--repeat`, in rotating order, TensorFlow and the model's first build warmed
first; each "first" run starts from an empty cache and a fresh s3fs filesystem):
- fetch, first / fetch, cached: `insight.model.fetched.fetch_model(url)` alone.
- local: `insight.load_model(path)` (preflight + safe-mode Keras load, in process).
- s3, first open: `insight.load_model(url)` with an empty cache: fetch + the same load.
- s3, second open: `insight.load_model(url)` again: HEAD + the same load.
With `--isolate`, every load also runs the sandbox child first (what the CLI and the app do).

Usage: python benchmarks/bench_remote_models.py [--repeat 5] [--isolate]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def start_moto() -> dict[str, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


def upload(path: Path, env: dict[str, str]) -> str:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
    client.create_bucket(Bucket="bench-models")
    client.upload_file(str(path), "bench-models", "mobilenet/model.keras")
    return "s3://bench-models/mobilenet/model.keras"


def fresh_cache(root: Path) -> None:
    """An empty insight cache and no s3fs filesystem kept from before."""
    import s3fs

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    s3fs.S3FileSystem.clear_instance_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--isolate", action="store_true",
                        help="load through the sandbox child first, as the CLI and app do")
    args = parser.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    env = start_moto()
    os.environ.update(env)
    with tempfile.TemporaryDirectory() as tmp:
        import keras

        from insight.model.fetched import fetch_model
        from insight.model.loading import load_model

        local = Path(tmp) / "mobilenet_v2.keras"
        keras.applications.MobileNetV2(weights=None).save(local)
        url = upload(local, env)
        cache = Path(tmp) / "cache"
        os.environ["INSIGHT_CACHE_DIR"] = str(cache)
        isolate = True if args.isolate else False
        print(f"MobileNetV2: {local.stat().st_size / 2**20:.1f} MB; isolate={isolate}")
        load_model(local)  # imports and Keras' first build out of the clock

        def fetch_first() -> None:
            fresh_cache(cache)
            fetch_model(url)

        def open_first() -> None:
            fresh_cache(cache)
            load_model(url, isolate=isolate)

        rows = {"fetch, first": (fetch_first, None),
                "fetch, cached": (lambda: fetch_model(url), None),
                "local": (lambda: load_model(local, isolate=isolate), None),
                "s3, first open": (open_first, None),
                "s3, second open": (lambda: load_model(url, isolate=isolate), None)}
        times: dict[str, list[float]] = {name: [] for name in rows}
        names = list(rows)
        for i in range(args.repeat):
            for name in names[i % len(names):] + names[:i % len(names)]:
                if name in ("fetch, cached", "s3, second open"):
                    fetch_model(url)  # the cache holds the file before a cached row
                start = time.perf_counter()
                rows[name][0]()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["local"])
    print(f"\n{'route':<18} {'median s':>9} {'min s':>7} {'max s':>7} {'vs local':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<18} {med:>9.3f} {min(ts):>7.3f} {max(ts):>7.3f} {med / base:>8.2f}x")
    print(f"\nload average at end {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
