"""The browser's runtimes on an export: MediaPipe Tasks web and LiteRT.js in headless Chromium.

The page, the Node runner and the pinned npm packages live in ``web/`` (``make browser-deps``
installs them from its lock file); this module writes a job for ``web/check.mjs``, runs it and
reads back one class mask per image and client. Everything is served from 127.0.0.1 and the
browser may reach nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petseg.errors import PetsegError

WEB = Path(__file__).resolve().parents[1] / "web"
PACKAGES = ("@mediapipe/tasks-vision", "@litertjs/core", "playwright-core")
LITERT_BUILDS = ("default", "jspi")


@dataclass(frozen=True)
class Client:
    runtime: str  # mediapipe | litertjs
    delegate: str  # mediapipe: cpu | gpu (WebGL); litertjs: wasm | webgpu

    @property
    def name(self) -> str:
        return {"mediapipe": "MediaPipe web", "litertjs": "LiteRT.js"}[self.runtime]


CLIENTS = (Client("mediapipe", "cpu"), Client("mediapipe", "gpu"),
           Client("litertjs", "wasm"), Client("litertjs", "webgpu"))


def chromium() -> Path:
    return Path(os.environ.get("PETSEG_CHROMIUM", "/usr/bin/chromium"))


def missing(web: Path = WEB) -> str | None:
    """Why the browser check cannot run here, in one line, or None when it can."""
    if shutil.which("node") is None:
        return "no node on PATH (install Node.js 20 or later)"
    absent = [p for p in PACKAGES if not (web / "node_modules" / p / "package.json").is_file()]
    if absent:
        return f"{web}/node_modules lacks {', '.join(absent)} (run `make browser-deps`)"
    if not chromium().is_file():
        return f"no Chromium at {chromium()} (as root on Debian, `make gpu-deps`; or set PETSEG_CHROMIUM)"
    return None


def run_clients(models: list[Path], images: np.ndarray, clients=CLIENTS, build: str = "default",
                timeout_s: float = 600, web: Path = WEB) -> dict:
    """Each model on each client: {"chromium", "blocked", "results": [{..., "masks" (N, S, S)}]}."""
    why = missing(web)
    if why:
        raise PetsegError(f"the browser check cannot run: {why}")
    count, size = images.shape[:2]
    with tempfile.TemporaryDirectory(prefix="petseg-web-") as tmp:
        job = Path(tmp)
        (job / "images.u8").write_bytes(np.ascontiguousarray(images, np.uint8).tobytes())
        names = _link_models(models, job)
        runs = [{"runtime": c.runtime, "delegate": c.delegate, "build": build, "model": name}
                for name in names for c in clients]
        spec = {"images": "images.u8", "size": int(size), "count": int(count), "timeout_s": timeout_s,
                "runs": runs}
        (job / "job.json").write_text(json.dumps(spec))
        _node(web, job, timeout_s * len(runs) + 120)
        answer = json.loads((job / "results.json").read_text())
    for result, model in zip(answer["results"], [m for m in models for _ in clients]):
        result["path"] = str(model)
        if result.get("ok"):
            masks = np.frombuffer(base64.b64decode(result.pop("masks")), np.uint8)
            result["masks"] = masks.reshape(count, size, size)
    return answer


def _link_models(models: list[Path], job: Path) -> list[str]:
    """The models inside the served folder, by link (no copy of a 40 MB file), named by position."""
    names = []
    for i, model in enumerate(models):
        name = f"m{i}_{model.name}"
        (job / name).symlink_to(Path(model).resolve())
        names.append(name)
    return names


def _node(web: Path, job: Path, timeout_s: float) -> None:
    cmd = ["node", str(web / "check.mjs"), str(job / "job.json"), str(job / "results.json")]
    try:
        # Its progress (one line per run) goes straight to the terminal; its errors are read here.
        proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise PetsegError(f"the browser check gave no answer within {timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not (job / "results.json").is_file():
        said = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise PetsegError(f"the browser check failed: {said[-1] if said else f'exit {proc.returncode}'}")


def one_line(error: str) -> str:
    """A runtime's failure in one line: MediaPipe's status without its source trace and with its
    graph node named by its calculator alone."""
    text = error.split("=== Source Location Trace")[0]
    text = re.sub(r'node "[^"]*__([A-Za-z]+)"', r'node "\1"', text)
    text = " ".join(text.replace("; WaitUntilIdle failed", "").split())
    return text if len(text) <= 240 else text[:237] + "..."
