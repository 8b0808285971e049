"""Test-session set-up shared by every folder."""

from __future__ import annotations

import os

import torch

# Triton reads TRITON_INTERPRET once, when it is first imported. Set it before any test module
# can import it, so that on a machine without a GPU every kernel test runs in Triton's
# interpreter, whichever test imports Triton first.
if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
