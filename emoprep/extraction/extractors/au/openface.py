"""OpenFace 2 action units: import CSVs OpenFace already wrote, or run its ``FeatureExtraction``.

Two modes, chosen by ``au_options``:

* ``csv_dir=DIR``: one OpenFace CSV per video, ``DIR/<video_id>.csv`` (or ``<video_id>.<region>.csv``
  for one half of an IEMOCAP frame, tried first).  Rows are matched to sampled frames by nearest
  ``timestamp`` within ``tolerance_s`` (default: half the CSV's median frame step, at least 20 ms).
  This is how most users have AUs: OpenFace is a C++ tool, often run once on a cluster.
* ``binary=PATH`` or ``FeatureExtraction`` on ``PATH``: the sampled frames of each utterance (the
  speaker's region, full resolution) are written as PNGs and passed with ``-fdir``; row *i* of the
  output belongs to frame *i*.  One process per utterance costs OpenFace's model load (~1 s), the
  price of getting exactly the frames, and the region, that the other visual columns describe.

In both modes a row with ``success == 0`` or ``confidence < min_confidence`` (option, default 0, so
only OpenFace's own success flag counts) gives a null vector, as does a frame with no row in tolerance.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import MediaError, SetupError
from .base import AU_NAMES, AUBackend, AURequest, AUVector

STAGE = "aus"
CSV_CACHE_SIZE = 4


class OpenFaceTable:
    """The AU part of one OpenFace CSV: timestamps, validity and the 35 AU columns."""

    def __init__(self, timestamps: np.ndarray, valid: np.ndarray, values: np.ndarray, source: str) -> None:
        self.timestamps = timestamps
        self.valid = valid
        self.values = values
        self.source = source

    @classmethod
    def read(cls, path: str | Path, min_confidence: float = 0.0, order_by: str = "timestamp") -> "OpenFaceTable":
        """Parse an OpenFace CSV (``", "`` separators); AUs it lacks are NaN, i.e. null later.

        Rows are sorted by ``order_by`` (``timestamp`` for lookup by time, ``frame`` for ``-fdir`` runs).
        """
        import pandas as pd

        try:
            df = pd.read_csv(path, skipinitialspace=True)
        except Exception as exc:
            raise MediaError(STAGE, f"cannot read OpenFace CSV {path}: {exc}") from exc
        df.columns = [str(c).strip() for c in df.columns]
        if "timestamp" not in df.columns:
            raise MediaError(STAGE, f"{path} has no 'timestamp' column: not an OpenFace FeatureExtraction CSV")
        present = [n for n in AU_NAMES if n in df.columns]
        if not present:
            raise MediaError(STAGE, f"{path} has no AU columns (run FeatureExtraction with -aus)")
        values = np.full((len(df), len(AU_NAMES)), np.nan, dtype=np.float64)
        for j, n in enumerate(AU_NAMES):
            if n in df.columns:
                values[:, j] = pd.to_numeric(df[n], errors="coerce").to_numpy(dtype=np.float64)
        valid = np.ones(len(df), dtype=bool)
        if "success" in df.columns:
            valid &= pd.to_numeric(df["success"], errors="coerce").fillna(0).to_numpy() > 0
        if "confidence" in df.columns:
            valid &= pd.to_numeric(df["confidence"], errors="coerce").fillna(0).to_numpy() >= min_confidence
        ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
        key = ts if order_by == "timestamp" or order_by not in df.columns else df[order_by].to_numpy()
        order = np.argsort(key, kind="stable")
        return cls(ts[order], valid[order], values[order], str(path))

    def default_tolerance(self) -> float:
        steps = np.diff(self.timestamps)
        steps = steps[steps > 0]
        return max(0.02, float(np.median(steps)) / 2) if steps.size else 0.02

    def lookup(self, times: list[float], tolerance: float) -> list[AUVector | None]:
        """The row nearest each time, or ``None`` beyond ``tolerance`` or where the row is invalid."""
        out: list[AUVector | None] = []
        n = len(self.timestamps)
        for t in times:
            i = int(np.searchsorted(self.timestamps, t))
            best = min((j for j in (i - 1, i) if 0 <= j < n), key=lambda j: abs(self.timestamps[j] - t), default=None)
            if best is None or abs(self.timestamps[best] - t) > tolerance or not self.valid[best]:
                out.append(None)
                continue
            out.append([None if np.isnan(v) else float(v) for v in self.values[best]])
        return out


class OpenFaceBackend(AUBackend):
    """AUs from OpenFace 2, imported from CSVs (``csv_dir``) or computed by its binary."""

    name = "openface"

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        self.csv_dir = Path(options["csv_dir"]).expanduser() if options.get("csv_dir") else None
        self.binary = options.get("binary") or (None if self.csv_dir else shutil.which("FeatureExtraction"))
        self.min_confidence = float(options.get("min_confidence", 0.0))
        self.tolerance_s = float(options["tolerance_s"]) if options.get("tolerance_s") else None
        self.timeout_s = float(options.get("timeout_s", 600))
        self._tables: OrderedDict[Path, OpenFaceTable | None] = OrderedDict()

    @property
    def mode(self) -> str:
        return "csv" if self.csv_dir is not None else "binary"

    def check(self) -> None:
        if self.csv_dir is not None:
            if not self.csv_dir.is_dir():
                raise SetupError(
                    f"OpenFace CSV folder {self.csv_dir} does not exist: pass the folder holding "
                    "<video_id>.csv files with --au-option csv_dir=DIR"
                )
            return
        if not self.binary or not Path(self.binary).exists() and shutil.which(self.binary) is None:
            raise SetupError(
                "AU backend 'openface' needs OpenFace 2's FeatureExtraction: put it on PATH, pass "
                "--au-option binary=/path/to/FeatureExtraction, or import CSVs it wrote with "
                "--au-option csv_dir=DIR (one <video_id>.csv per video)"
            )

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "backend": "openface",
            "mode": self.mode,
            "min_confidence": self.min_confidence,
            "tolerance_s": self.tolerance_s if self.tolerance_s is not None else "auto (half the CSV frame step)",
            "au_names": list(AU_NAMES),
        }
        if self.mode == "binary":
            d["binary"] = Path(str(self.binary)).name
            d["version"] = self._binary_version()
        return d

    def _binary_version(self) -> str:
        # FeatureExtraction has no --version; record the file's size as a weak identity instead of
        # its path (paths would leak machine layout into the shards).
        try:
            return f"size={Path(shutil.which(str(self.binary)) or str(self.binary)).stat().st_size}"
        except OSError:
            return "unknown"

    def predict(self, request: AURequest) -> list[AUVector | None]:
        if self.mode == "csv":
            return self._from_csv(request)
        return self._from_binary(request)

    # --- CSV import -------------------------------------------------------------------------
    def _csv_for(self, video_id: str, region: str | None) -> Path | None:
        assert self.csv_dir is not None
        names = ([f"{video_id}.{region}.csv"] if region else []) + [f"{video_id}.csv"]
        for n in names:
            p = self.csv_dir / n
            if p.is_file():
                return p
        return None

    def _table(self, path: Path) -> OpenFaceTable:
        if path in self._tables:
            self._tables.move_to_end(path)
            table = self._tables[path]
        else:
            table = OpenFaceTable.read(path, self.min_confidence)
            self._tables[path] = table
            while len(self._tables) > CSV_CACHE_SIZE:
                self._tables.popitem(last=False)
        assert table is not None
        return table

    def _from_csv(self, request: AURequest) -> list[AUVector | None]:
        path = self._csv_for(request.video_id, request.region)
        if path is None:
            raise MediaError(STAGE, f"no OpenFace CSV {request.video_id}.csv in the csv_dir folder")
        table = self._table(path)
        tol = self.tolerance_s if self.tolerance_s is not None else table.default_tolerance()
        return table.lookup([f.t_s for f in request.frames], tol)

    # --- running the binary -----------------------------------------------------------------
    def _from_binary(self, request: AURequest) -> list[AUVector | None]:
        import cv2

        with tempfile.TemporaryDirectory(prefix="emoprep-openface-") as tmp:
            frames_dir, out_dir = Path(tmp) / "frames", Path(tmp) / "out"
            frames_dir.mkdir()
            out_dir.mkdir()
            for i, frame in enumerate(request.frames):
                cv2.imwrite(str(frames_dir / f"{i:06d}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
            cmd = [str(self.binary), "-fdir", str(frames_dir), "-out_dir", str(out_dir), "-aus", "-q"]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise MediaError(STAGE, f"OpenFace FeatureExtraction failed to run: {exc}") from exc
            csvs = sorted(out_dir.glob("*.csv"))
            if proc.returncode != 0 or not csvs:
                tail = (proc.stderr or proc.stdout or "").strip()[-500:]
                raise MediaError(STAGE, f"OpenFace FeatureExtraction exited {proc.returncode}: {tail}")
            table = OpenFaceTable.read(csvs[0], self.min_confidence, order_by="frame")
        # -fdir output: frame i+1 is image i; OpenFace's own timestamps are meaningless here.
        return _by_row(table, len(request.frames))


def _by_row(table: OpenFaceTable, n: int) -> list[AUVector | None]:
    out: list[AUVector | None] = []
    for i in range(n):
        if i >= len(table.values) or not table.valid[i]:
            out.append(None)
        else:
            out.append([None if np.isnan(v) else float(v) for v in table.values[i]])
    return out
