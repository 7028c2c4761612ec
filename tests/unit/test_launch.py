"""How the app learns its model, data and logdir: script arguments over the environment."""

from __future__ import annotations

import pytest

from insight.launch import LaunchOptions, app_argv, parse_app_args

FULL_ENV = {
    "INSIGHT_MODEL": "env.keras",
    "INSIGHT_DATA": "env.npz",
    "INSIGHT_LOGDIR": "env_logs",
    "INSIGHT_CUSTOM_OBJECTS": "env_layers.py",
}


def test_empty():
    assert parse_app_args([], env={}) == LaunchOptions()
    assert parse_app_args(None, env={}) == LaunchOptions()


def test_argv_only():
    opts = parse_app_args(["m.keras", "--data", "d.npz", "--logdir", "logs",
                           "--custom-objects", "layers.py", "--unsafe"], env={})
    assert opts == LaunchOptions(model="m.keras", data="d.npz", logdir="logs", unsafe=True,
                                 custom_objects="layers.py")


def test_env_only():
    opts = parse_app_args([], env=FULL_ENV)
    assert opts == LaunchOptions(model="env.keras", data="env.npz", logdir="env_logs",
                                 custom_objects="env_layers.py")


def test_argv_wins_over_env():
    opts = parse_app_args(["arg.keras", "--logdir", "arg_logs"], env=FULL_ENV)
    assert opts.model == "arg.keras"
    assert opts.logdir == "arg_logs"
    assert opts.data == "env.npz"  # not given as an argument: the environment fills it
    assert opts.custom_objects == "env_layers.py"


def test_reads_os_environ_by_default(monkeypatch):
    for var in ("INSIGHT_MODEL", "INSIGHT_DATA", "INSIGHT_LOGDIR", "INSIGHT_CUSTOM_OBJECTS",
                "INSIGHT_UNSAFE", "INSIGHT_LOCKED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("INSIGHT_MODEL", "from_env.keras")
    monkeypatch.setenv("INSIGHT_UNSAFE", "1")
    opts = parse_app_args([])
    assert opts.model == "from_env.keras" and opts.unsafe is True
    assert parse_app_args(["arg.keras"]).model == "arg.keras"


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("", False), ("off", False),
])
def test_insight_unsafe(value, expected):
    assert parse_app_args(["m.keras"], env={"INSIGHT_UNSAFE": value}).unsafe is expected


def test_unsafe_flag_wins_over_env():
    assert parse_app_args(["--unsafe"], env={"INSIGHT_UNSAFE": "0"}).unsafe is True
    assert parse_app_args([], env={}).unsafe is False


def test_insight_locked():
    assert parse_app_args([], env={"INSIGHT_LOCKED": "1"}).locked is True
    assert parse_app_args([], env={}).locked is False
    # locking comes from the environment only, never from an argument
    assert parse_app_args(["--locked"], env={}).locked is False


def test_unknown_args_ignored():
    opts = parse_app_args(["m.keras", "--bogus", "--server.port=8502", "--data", "d.npz",
                           "--theme", "dark"], env={})
    assert opts.model == "m.keras"
    assert opts.data == "d.npz"
    assert opts.unsafe is False


@pytest.mark.parametrize("opts", [
    LaunchOptions(),
    LaunchOptions(model="m.keras"),
    LaunchOptions(model="m.keras", data="d.npz", logdir="logs", unsafe=True,
                  custom_objects="layers.py"),
    LaunchOptions(data="d.npz"),
])
def test_app_argv_round_trip(opts):
    assert parse_app_args(app_argv(opts), env={}) == opts


def test_app_argv_order():
    opts = LaunchOptions(model="m.keras", data="x.npz", logdir="logs", unsafe=True)
    assert app_argv(opts) == ["m.keras", "--data", "x.npz", "--logdir", "logs", "--unsafe"]
