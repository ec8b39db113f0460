"""``python -m inference.kernels``: build the CPU kernels now (``make setup`` runs it)."""

import logging
import sys

from inference import kernels

logging.basicConfig(level=logging.INFO, format="%(message)s")
if kernels.available():
    print("CPU kernels: built")
else:
    print("CPU kernels: not built (no C++ toolchain or INFERENCE_KERNELS=0); portable path")
sys.exit(0)
