"""The build's pure parts: one extension per CPU tier, compiled for exactly that tier, from
sources and headers that exist, and a rebuild whenever any header changes."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from inference import kernels
from inference.cpu import Isa, cpu_info
from inference.kernels import build


def test_every_source_and_header_exists_and_every_header_is_hashed():
    assert all(path.is_file() for path in (*build.SOURCES, *build.HEADERS))
    assert len(set(build.SOURCES)) == len(build.SOURCES)
    included = {
        name
        for path in (*build.SOURCES, *build.HEADERS)
        for name in re.findall(r'#include "([^"]+)"', path.read_text())
    }
    assert included <= {path.name for path in build.HEADERS}
    assert re.fullmatch(r"[0-9a-f]{12}", build.headers_hash())


@pytest.mark.parametrize("isa", list(build.TIER_ARCH))
def test_each_x86_tier_builds_its_own_extension_for_its_own_instructions(isa: Isa):
    info = replace(cpu_info(), arch="x86_64", isa=isa)
    assert build.extension_name(info) == f"inference_kernels_{isa.name.lower()}"
    assert build.arch_flags(info) == [*build.TIER_ARCH[isa], "-mtune=native"]


def test_aarch64_compiles_for_the_host():
    assert build.arch_flags(replace(cpu_info(), arch="aarch64")) == ["-mcpu=native"]


def test_the_build_wait_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("INFERENCE_KERNELS_BUILD_WAIT", raising=False)
    assert build.build_wait_s() == build.DEFAULT_BUILD_WAIT_S
    monkeypatch.setenv("INFERENCE_KERNELS_BUILD_WAIT", "2.5")
    assert build.build_wait_s() == 2.5


def test_disabled_kernels_are_not_built(monkeypatch):
    monkeypatch.setenv("INFERENCE_KERNELS", "0")
    assert build.load() is False


def test_the_op_api_keeps_the_build_names_callers_use():
    for name in ("arch_flags", "build_directory", "build_lock", "BUILD_LOCK", "TORCH_BATON"):
        assert getattr(kernels, name) is getattr(build, name)
