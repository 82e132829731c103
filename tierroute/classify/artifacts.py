"""Where router versions and thresholds live, and which ones the classifier loads.

    <router dir>/versions/<version>.npz   every trained version, promoted or not
    <router dir>/promoted.json            the version in use, with its held-out scores
    <router dir>/thresholds.json          thresholds written by `tierroute calibrate`

The router dir is TIERROUTE_ROUTER_DIR, else TIERROUTE_DATA_DIR/router. Without a
promoted version the classifier uses the artifact shipped in the package
(`tierroute/data/local_router.npz`), so a fresh install routes with no setup.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from tierroute.classify.model import LocalModel
from tierroute.config import Settings
from tierroute.domain.decisions import ScoreThresholds

log = logging.getLogger(__name__)

PACKAGED_NAME = "local_router.npz"


def packaged_path() -> Path:
    """The artifact shipped inside the package."""
    return Path(str(resources.files("tierroute") / "data" / PACKAGED_NAME))


def load_packaged() -> LocalModel:
    """The shipped model."""
    return LocalModel.load(packaged_path())


def versions_dir(root: Path) -> Path:
    """Directory of trained versions."""
    return root / "versions"


def version_path(root: Path, version: str) -> Path:
    """The file of one trained version."""
    return versions_dir(root) / f"{version}.npz"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def promoted(root: Path) -> dict[str, Any] | None:
    """The promotion record (version, time, scores), or None."""
    return _read_json(root / "promoted.json")


def promote(root: Path, version: str, scores: dict[str, Any]) -> None:
    """Make `version` the one the classifier loads (from the next process start)."""
    previous = promoted(root)
    _write_json(
        root / "promoted.json",
        {
            "version": version,
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scores": scores,
            "previous": previous.get("version") if previous else None,
        },
    )


def load_current(root: Path) -> tuple[LocalModel, str]:
    """The promoted version if it loads, else the packaged one; with where it came from."""
    record = promoted(root)
    if record and record.get("version"):
        path = version_path(root, str(record["version"]))
        try:
            return LocalModel.load(path), str(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("promoted router %s does not load (%s); using the packaged one", path, exc)
    return load_packaged(), "packaged"


def save_thresholds(root: Path, thresholds: ScoreThresholds, details: dict[str, Any]) -> Path:
    """Write calibrated thresholds where the classifier reads them."""
    path = root / "thresholds.json"
    _write_json(
        path,
        {
            "haiku_max_score": thresholds.haiku_max,
            "opus_min_score": thresholds.opus_min,
            "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **details,
        },
    )
    return path


def resolve_thresholds(settings: Settings, model: LocalModel) -> ScoreThresholds:
    """Settings win, then calibrated thresholds, then the model's own defaults."""
    calibrated = _read_json(settings.router_path / "thresholds.json") or {}
    low, high, source = model.haiku_max, model.opus_min, f"model {model.version}"
    if "haiku_max_score" in calibrated and "opus_min_score" in calibrated:
        low, high = float(calibrated["haiku_max_score"]), float(calibrated["opus_min_score"])
        source = "calibrated"
    if settings.haiku_max_score is not None:
        low, source = settings.haiku_max_score, "settings"
    if settings.opus_min_score is not None:
        high, source = settings.opus_min_score, "settings"
    if low > high:
        raise ValueError(f"haiku_max_score {low:g} exceeds opus_min_score {high:g} ({source})")
    return ScoreThresholds(low, high, source)
