"""What machine a benchmark ran on: CPU model, the vector-instruction flags that change speeds,
cores. Print it beside every figure: speeds compare only within one run on one machine."""

from __future__ import annotations

import os
from pathlib import Path

# The flags that make the difference for ONNX Runtime, PostgreSQL's CRC and compression...
NOTABLE_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``Intel(R) Xeon(R) Processor, 2 cores, flags: sse4_2 avx avx2 fma avx512f ...``."""
    model, flags = "unknown CPU", set[str]()
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    notable = " ".join(flag for flag in NOTABLE_FLAGS if flag in flags) or "none of note"
    return f"{model}, {os.cpu_count()} cores, flags: {notable}"
