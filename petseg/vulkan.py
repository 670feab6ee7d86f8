"""A Vulkan device for LiteRT's GPU accelerator (ML Drift over WebGPU/Dawn, which runs on Vulkan).

On a machine without a GPU driver, SwiftShader (a software Vulkan device shipped in Debian's
``chromium`` package) runs the real delegate code: which ops it takes, what it refuses, its
numerics. Mesa's lavapipe from Debian 12 is refused by Dawn ("shaderUniform*ArrayDynamicIndexing
required"), so it is not offered here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
from pathlib import Path

CHROMIUM_DIR = Path("/usr/lib/chromium")
SWIFTSHADER_ICD = CHROMIUM_DIR / "vk_swiftshader_icd.json"
ICD_DIRS = (Path("/usr/share/vulkan/icd.d"), Path("/etc/vulkan/icd.d"))
HOW_TO_GET_ONE = ("install a GPU's Vulkan driver, or SwiftShader (a software Vulkan device): as root, "
                  "`make gpu-deps` (apt-get install chromium libvulkan1)")
# Dawn logs the adapter it picked; the LiteRT API does not say.
ADAPTER = re.compile(r"Selected adapter: (.+)")


def prepare() -> None:
    """Point the Vulkan loader at SwiftShader when no other device is configured, in this process.

    Environment variables are read when the loader starts (at the first GPU compile), so setting
    them here, before that, reaches it; children inherit them.
    """
    chosen = any(v in os.environ for v in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES"))
    if not chosen and SWIFTSHADER_ICD.is_file():
        # Beside a real driver, SwiftShader is one more adapter (Dawn prefers real GPUs).
        os.environ["VK_ADD_DRIVER_FILES" if _system_icds() else "VK_ICD_FILENAMES"] = str(SWIFTSHADER_ICD)
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # Dawn warns, and some loaders fail, without it
    if ctypes.util.find_library("vulkan") is None and (CHROMIUM_DIR / "libvulkan.so.1").is_file():
        # No system loader (libvulkan1): chromium's own copy, loaded globally, is the one Dawn's
        # dlopen("libvulkan.so.1") then finds by its soname.
        ctypes.CDLL(str(CHROMIUM_DIR / "libvulkan.so.1"), mode=ctypes.RTLD_GLOBAL)


def _system_icds() -> list[Path]:
    return [p for d in ICD_DIRS if d.is_dir() for p in d.glob("*.json")]


def device_configured() -> bool:
    """Whether a Vulkan loader and at least one device description (ICD) can be found."""
    loader = ctypes.util.find_library("vulkan") or (CHROMIUM_DIR / "libvulkan.so.1").is_file()
    icd = (os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES") or _system_icds()
           or SWIFTSHADER_ICD.is_file())
    return bool(loader and icd)


def missing_device(why: str = "no Vulkan device found") -> str:
    return f"LiteRT's GPU accelerator needs a Vulkan device ({why}): {HOW_TO_GET_ONE}"


def adapter_from_log(log: str) -> str | None:
    """The adapter Dawn reported selecting, e.g. 'SwiftShader Device (Subzero), ..., CPU / Software'."""
    match = ADAPTER.search(log)
    return match.group(1).strip() if match else None


def is_software(adapter: str | None) -> bool:
    return bool(adapter) and ("Software" in adapter or "SwiftShader" in adapter or "llvmpipe" in adapter)
