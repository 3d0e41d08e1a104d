"""The instruction sets a plan can be made for, and this machine's: OpenVINO's CPU plugin
picks kernels by the widest vector extension, ORT's int8 kernels depend on VNNI."""

from __future__ import annotations

# the instruction sets a plan can be made for, widest first, with the cpuinfo flag of each
ISAS = {"amx": "amx_tile", "avx512": "avx512f", "avx2": "avx2", "sse4.2": "sse4_2"}


def cpu_flags() -> set[str]:
    """The flags of this machine's CPU (``/proc/cpuinfo``), or none where it can't be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1].split() for line in f
                             if line.startswith("flags")), []))
    except OSError:
        return set()


def has_vnni(flags: set[str] | None = None) -> bool:
    """Whether the CPU has an int8 dot-product instruction (AVX512-VNNI or AVX-VNNI)."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & (cpu_flags() if flags is None
                                                            else flags))


def detect_isa() -> str:
    """This machine's widest x86 vector extension as OpenVINO's CPU plugin picks kernels
    by it (amx, avx512, avx2, sse4.2), or the machine's architecture elsewhere."""
    import platform

    flags = cpu_flags()
    for isa, flag in ISAS.items():
        if flag in flags:
            return isa
    return platform.machine().lower() or "unknown"
