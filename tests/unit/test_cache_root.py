"""One cache folder for insight: `INSIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/insight`, else
`~/.cache/insight`; remote fetches and profile captures both live under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from insight.profiler.cache import cache_root
from insight.remote import cache_root as remote_root
from insight.remote import fetch


@pytest.mark.parametrize("insight_dir, xdg, expected", [
    ("{tmp}/mine", "{tmp}/xdg", "{tmp}/mine"),
    (None, "{tmp}/xdg", "{tmp}/xdg/insight"),
    (None, "", "{home}/.cache/insight"),  # an empty XDG_CACHE_HOME counts as unset
    (None, None, "{home}/.cache/insight"),
])
def test_one_cache_folder_for_profiles_and_remote_files(monkeypatch, tmp_path, insight_dir,
                                                        xdg, expected):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name, value in (("INSIGHT_CACHE_DIR", insight_dir), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(tmp=tmp_path))
    want = Path(expected.format(tmp=tmp_path, home=home))
    assert cache_root() == want
    assert remote_root() == want / "remote"


def test_a_fetched_file_lands_under_xdg_cache_home(s3, monkeypatch, tmp_path):
    monkeypatch.delenv("INSIGHT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    url = s3.put(f"s3://{s3.bucket()}/m/model.keras", b"weights" * 100)
    local = fetch(url)
    assert local.is_relative_to(tmp_path / "xdg" / "insight" / "remote")
    assert local.read_bytes() == b"weights" * 100
