"""Profiles under a remote logdir (`s3://...`, `gs://...`): listed, then fetched one run at a
time into insight's cache and read as local ones.

`list_remote_profiles` lists the logdir's keys (nothing is downloaded) and labels each run as
`insight.profiler.capture.find_profiles` labels a local one. `fetch_profile` copies one run's
`.xplane.pb` files (never the rest of the logdir: event files, checkpoints) into the
content-addressed cache of `insight.remote` (once per object version) and lays them out as
`<local>/<...>/plugins/profile/<run>/` with hard links, so `get_profile(local, label)` opens
the run and xprof converts it locally, exactly as a profile on disk.

Example:

>>> runs = list_remote_profiles("s3://runs/exp1/logs")  # doctest: +SKIP
>>> runs[0].label  # doctest: +SKIP
'train/2026_11_26_19_12_21'
>>> local = fetch_profile("s3://runs/exp1/logs", runs[0])  # doctest: +SKIP
>>> get_profile(local, runs[0].label).hosts  # doctest: +SKIP
(PosixPath('.../views/profiles/3f.../train/plugins/profile/2026_11_26_19_12_21/vm.xplane.pb'),)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from insight.errors import DataError

__all__ = ["RemoteRun", "list_remote_profiles", "fetch_profile", "fetch_profiles"]


@dataclass(frozen=True)
class RemoteRun:
    """A profile run under a remote logdir, listed (not fetched).

    Attributes:
        label: as `ProfileRun.label` would name it once fetched (`"train/2026_11_26_19_12_21"`).
        folder: its folder relative to the logdir URL (`"train/plugins/profile/2026_..."`).
        hosts: the URLs of its `.xplane.pb` files, sorted.
        size: their bytes.
    """

    label: str
    folder: str
    hosts: tuple[str, ...]
    size: int


def list_remote_profiles(url: str) -> list[RemoteRun]:
    """Every profile run under the remote logdir `url` (one listing; nothing downloaded),
    newest first, labelled as `find_profiles` labels a local logdir.

    Args:
        url: an `s3://`/`gs://` logdir, its `plugins/profile` folder, or one run folder.

    Raises:
        StorageError: the bucket is missing, the credentials are refused, the connection
            dropped.
    """
    from insight.remote import check_url, filesystem, storage_errors

    url = check_url(url)
    fs, key = filesystem(url)
    with storage_errors(url):
        found = fs.find(key, detail=True)
    base = key.rstrip("/") + "/"
    tail = base.rstrip("/").split("/")
    # given inside the layout: `.../plugins/profile` or `.../plugins/profile/<run>`
    lead = ("plugins/profile/" if tail[-2:] == ["plugins", "profile"] else
            f"plugins/profile/{tail[-1]}/" if tail[-3:-1] == ["plugins", "profile"] else "")
    runs: dict[str, list[tuple[str, int]]] = {}
    for name, info in found.items():
        rel = lead + name[len(base):] if name.startswith(base) else ""
        parts = rel.split("/")
        if (len(parts) >= 4 and parts[-1].endswith(".xplane.pb")
                and parts[-4:-2] == ["plugins", "profile"]):
            runs.setdefault("/".join(parts[:-1]), []).append((parts[-1],
                                                              int(info.get("size") or 0)))
    out = []
    scheme, _ = url.split("://", 1)
    for folder, hosts in runs.items():
        prefix = folder[len(lead):] if lead and folder.startswith(lead) else folder
        remote = f"{scheme}://{base}{prefix}".rstrip("/")
        label = folder.replace("plugins/profile/", "").replace("plugins/profile", "") or \
            folder.rsplit("/", 1)[-1]
        out.append(RemoteRun(label, folder, tuple(sorted(f"{remote}/{h}" for h, _ in hosts)),
                             sum(n for _, n in hosts)))
    return sorted(out, key=lambda r: (r.folder.rsplit("/", 1)[-1], r.label), reverse=True)


def fetch_profile(url: str, run: RemoteRun | str = "") -> Path:
    """A local logdir holding the run `run` of the remote logdir `url`: its `.xplane.pb` files
    fetched into insight's content-addressed cache (once per object version) and linked at
    `<local>/<folder>/`, so `get_profile(local, run.label)` opens it as a local profile.

    Args:
        url: the remote logdir, as given to `list_remote_profiles`.
        run: a `RemoteRun`, or a run's label; `""` for the newest. Defaults to `""`.

    Raises:
        StorageError: as `list_remote_profiles`, or a dropped download (nothing half-written
            is kept).
        DataError: no profile under `url`, or no run called `run`.
    """
    from insight.remote import link_view

    if not isinstance(run, RemoteRun):
        runs = list_remote_profiles(url)
        wanted = [r for r in runs if not run or run in (r.label, r.folder.rsplit("/", 1)[-1])]
        if not wanted:
            raise DataError(f"No profile run {run!r} under {url}." if runs else
                            f"No profile under {url}: no plugins/profile/<run>/*.xplane.pb.",
                            "Check the logdir, or capture a profile with `insight profile`.",
                            f"logdir={url!r}, run={run!r}")
        run = wanted[0]
    return link_view("profiles", _run_files(run), salt=url)


def fetch_profiles(url: str) -> Path:
    """`fetch_profile` for every run under the remote logdir `url`: a local logdir holding
    all of its profiles (and nothing else of it). What `find_profiles` reads for a URL."""
    from insight.remote import cache_root, link_view

    runs = list_remote_profiles(url)
    if not runs:
        return _ensure(cache_root() / "views" / "profiles" / "empty")
    return link_view("profiles", {k: v for run in runs for k, v in _run_files(run).items()},
                     salt=url)


def _run_files(run: RemoteRun) -> dict[str, Path]:
    """The run's `.xplane.pb` files, fetched, by their paths in a local logdir."""
    from insight.remote import fetch

    return {f"{run.folder}/{local.name}": local for local in map(fetch, run.hosts)}


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
