"""The loopback server the engine tests use: per-path status and delay."""

from tests.engine.conftest import ControlServer, control_server  # noqa: F401 (a fixture)
