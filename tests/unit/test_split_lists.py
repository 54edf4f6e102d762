"""The MESM authors' split lists as shipped (``pipelines/splits/*_split/``) and split folders in general."""

from __future__ import annotations

import glob
import json
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from emoprep.extraction.readers.splitfiles import load_packaged_split, load_split_file, load_split_folder
from emoprep.errors import DatasetError, SetupError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PAPER_COUNTS = {
    "MOSEI_split": {"train": 14524, "valid": 1765, "test": 4188},
    "IEMOCAP_split": {"train": 5162, "valid": 737, "test": 1481},
}


@pytest.mark.parametrize("folder", sorted(PAPER_COUNTS))
def test_packaged_lists_have_the_papers_sizes(folder: str) -> None:
    split_map = load_packaged_split(folder)
    assert Counter(split_map.assignments.values()) == PAPER_COUNTS[folder]


@pytest.mark.parametrize("folder", sorted(PAPER_COUNTS))
def test_packaged_lists_are_the_published_files_unchanged(folder: str, shared) -> None:
    for split in ("train", "valid", "test"):
        shipped = resources.files("emoprep.pipelines").joinpath("splits", folder, f"{split}_split.txt")
        assert shipped.read_bytes() == shared("mesm-splits", folder, f"{split}_split.txt").read_bytes()


def test_mesm_mosei_lists_are_clips_of_standard_fold_videos() -> None:
    """What the README says about them: each listed clip's video is in the same CMU standard fold,
    so the mesm lists are a subset of the standard folds, video-disjoint like them."""
    mesm = load_packaged_split("MOSEI_split").assignments
    std = load_packaged_split("mosei_std_folds.json").assignments
    videos: dict[str, set[str]] = {}
    for uid, split in mesm.items():
        video, _, clip = uid.rpartition("_")
        assert clip.isdigit() and video, uid
        assert std.get(video) == split, uid
        videos.setdefault(split, set()).add(video)
    assert {s: len(v) for s, v in videos.items()} == {"train": 2086, "valid": 285, "test": 630}


def test_mesm_iemocap_lists_name_turns() -> None:
    ids = load_packaged_split("IEMOCAP_split").assignments
    assert all(i[:3] == "Ses" and i[3:5] in {"01", "02", "03", "04", "05"} and i.rsplit("_", 1)[1][0] in "FM" for i in ids)


def test_package_data_globs_cover_every_file_under_pipelines() -> None:
    """setuptools globs do not descend into subfolders: a new folder needs its own pattern."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "emoprep.pipelines"
    ]
    root = REPO / "pipelines"
    covered = {p for pat in patterns for p in glob.glob(pat, root_dir=root) if (root / p).is_file()}
    files = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert files <= covered, f"add package-data globs for {sorted(files - covered)}"
    assert "splits/MOSEI_split/train_split.txt" in files


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_bytes(text.encode())
    return path


def test_split_folder_layout(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path / "lists",
        {
            "train_split.txt": "\ufeffa_0\r\nb_1\r\n\r\n",  # BOM, CRLF and a blank line
            "dev_split.txt": "# comment\nc_2\n",  # dev means valid
            "test_split.txt": "d_3  \n",
            "README.md": "not a list",
        },
    )
    split_map = load_split_folder(folder)
    assert split_map.assignments == {"a_0": "train", "b_1": "train", "c_2": "valid", "d_3": "test"}
    assert split_map.lookup("d_3", "d") == "test" and split_map.lookup("e_0", "e") == "none"
    # as an option value: a folder given by path (absolute, or relative to the dataset root)
    assert load_split_file(str(folder), tmp_path / "elsewhere").assignments == split_map.assignments
    assert load_split_file("lists", tmp_path).assignments == split_map.assignments
    assert split_map.unmatched({"a_0", "zz_9"}, {"c"}) == ["b_1", "c_2", "d_3"]


@pytest.mark.parametrize(
    "files,error,match",
    [
        ({"notes.txt": "a\n"}, SetupError, "train_split.txt"),
        ({"holdout_split.txt": "a\n"}, DatasetError, "holdout"),
        ({"train_split.txt": "a\n", "test_split.txt": "b\na\n"}, DatasetError, r"_split.txt:\d+: id .a. is in both"),
        ({"train_split.txt": "a_0 train\n"}, DatasetError, "one id per line"),
    ],
)
def test_split_folder_errors_say_what_is_wrong(tmp_path: Path, files, error, match: str) -> None:
    with pytest.raises(error, match=match):
        load_split_folder(_folder(tmp_path / "lists", files))


def test_json_split_files_still_load(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"train": ["x"], "val": ["y"]}))
    assert load_split_file(str(f), tmp_path).assignments == {"x": "train", "y": "valid"}
