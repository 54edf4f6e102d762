"""A raw corpus tree on object storage (moto's real S3 server): ``--root s3://bucket/MOSEI`` and an
IEMOCAP release in a bucket give the shards of a run on the local copy, the media named by URL; a
recording missing from the bucket is a recorded failure as it is locally; reading downloads the
metadata only, into a mirror that is removed afterwards."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoprep.errors import DatasetError, SetupError
from emoprep.extraction import run_extract
from emoprep.extraction.config import build_config
from emoprep.extraction.readers import get_reader, read_dataset
from emoprep.extraction.readers.mirror import metadata_mirror, named_paths, selector
from emoprep.format.storage import filesystem
from emoprep.testing import build_iemocap_tree, build_mosei_tree, default_iemocap_turns

MODALITIES = ["text", "logmel", "visual"]  # audio and frames: both kinds of media fetched from the bucket
MEDIA_SUFFIXES = (".mp4", ".wav", ".avi")
IEMOCAP_DIALOGS = list(dict.fromkeys(t.dialog for t in default_iemocap_turns()))


@dataclass
class Corpus:
    """One miniature tree, on disk and uploaded to a bucket."""

    dataset: str
    local: Path
    url: str
    options: dict


def _upload(local: Path, url: str, options: dict) -> str:
    """``local``'s files under the prefix ``url``, as a user uploads a tree (one recursive put)."""
    fs, path = filesystem(url, options)
    fs.put(f"{local}/", path, recursive=True)
    return url


@pytest.fixture(scope="module")
def mosei(object_store, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """MOSEI with every media kind: one video without WAV (the default) and one with no media at all."""
    tree = build_mosei_tree(tmp_path_factory.mktemp("raw") / "mosei", media=True,
                            no_wav=("81406", "zzLocalVid01"), no_video=("zzLocalVid01",))
    return Corpus("mosei", tree.root, _upload(tree.root, object_store.bucket() + "/MOSEI", object_store.options),
                  object_store.options)


@pytest.fixture(scope="module")
def iemocap(object_store, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """IEMOCAP with a dialog without its avi and one without any media."""
    tree = build_iemocap_tree(tmp_path_factory.mktemp("raw") / "IEMOCAP_full_release", media=True,
                              no_video=(IEMOCAP_DIALOGS[1], IEMOCAP_DIALOGS[-1]), no_wav=(IEMOCAP_DIALOGS[-1],))
    return Corpus("iemocap", tree.root,
                  _upload(tree.root, object_store.bucket() + "/IEMOCAP_full_release", object_store.options),
                  object_store.options)


def _config(dataset: str):
    options = {"split": "session:5"} if dataset == "iemocap" else {}
    return build_config(dataset, {"modalities": MODALITIES, "shard_size": 4, "dataset_options": options})


def _runs(corpus: Corpus, tmp: Path) -> tuple[Path, Path]:
    """The corpus extracted from the local tree and from the bucket (both into local folders)."""
    local, remote = tmp / "local", tmp / "remote"
    assert run_extract(_config(corpus.dataset), corpus.local, local, synchronous=True).complete
    summary = run_extract(_config(corpus.dataset), corpus.url, remote, storage_options=corpus.options, synchronous=True)
    assert summary.complete, summary.shard_errors
    return local, remote


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_tree_in_a_bucket_gives_the_local_runs_shards(dataset: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    corpus: Corpus = request.getfixturevalue(dataset)
    local, remote = _runs(corpus, tmp_path)
    names = sorted(p.name for p in local.glob("*.parquet"))
    assert names == sorted(p.name for p in remote.glob("*.parquet")) and any("-of-" in n for n in names)
    media = ["video_path", "audio_path"]
    for name in names:
        mine, theirs = pq.read_table(local / name), pq.read_table(remote / name)
        if name == "utterances.parquet":  # the plan of record names each recording where it was read
            for column in media:
                as_url = [None if p is None else corpus.url + "/" + Path(p).relative_to(corpus.local).as_posix()
                          for p in mine.column(column).to_pylist()]
                assert theirs.column(column).to_pylist() == as_url
                assert any(as_url), column
            mine, theirs = mine.drop(media), theirs.drop(media)
        assert theirs.equals(mine), name
    counts = [json.loads((out / "manifest.json").read_text())["counts"] for out in (local, remote)]
    assert counts[0] == counts[1]
    failures = pq.read_table(remote / "failures.parquet").to_pylist()
    assert {f["error_type"] for f in failures} >= {"missing_media"}, "the recording missing from the bucket is a failure"
    secret = corpus.options["secret"].encode()
    assert all(secret not in p.read_bytes() for p in remote.rglob("*") if p.is_file())


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_the_mirror_holds_the_metadata_only_and_is_removed(dataset: str, request: pytest.FixtureRequest) -> None:
    corpus: Corpus = request.getfixturevalue(dataset)
    reader = get_reader(dataset)
    everything = {p.relative_to(corpus.local).as_posix(): p.stat().st_size for p in corpus.local.rglob("*") if p.is_file()}
    with metadata_mirror(corpus.url, corpus.options, selector(reader.metadata, ())) as mirror:
        held = {p.relative_to(mirror.root).as_posix() for p in mirror.root.rglob("*") if p.is_file()}
        root = mirror.root
        assert mirror.media.files == frozenset(everything), "the listing sees every object, media included"
    assert not root.exists()
    assert held == set(mirror.downloaded) and held, "what was downloaded is what the mirror holds"
    assert not any(name.endswith(MEDIA_SUFFIXES) for name in held)
    # the transcripts, label files and EmoEvaluation files (their ._ resource forks too, which the
    # reader lists and skips); not the Categorical/ sub-folder nor the per-sentence wavs
    assert held == {n for n in everything if Path(n).suffix in (".txt", ".csv") and "/Categorical/" not in n}
    assert mirror.downloaded_bytes == sum(everything[n] for n in held) < sum(everything.values()) / 10


def test_a_split_file_named_by_an_option_is_mirrored(mosei: Corpus, object_store, tmp_path: Path) -> None:
    """``splits=my/folds.json`` relative to the root is read from the bucket like the layout's files."""
    folds = {"train": ["-3g5yACwYnA"], "valid": [], "test": ["_0efYOjQYRc"]}
    (tmp_path / "folds.json").write_text(json.dumps(folds))
    fs, path = filesystem(mosei.url, mosei.options)
    fs.put_file(str(tmp_path / "folds.json"), f"{path}/my/folds.json")
    try:
        assert named_paths(["my/folds.json", "s3://x/y", "/abs", "3"]) == ("my/folds.json", "3")
        config = build_config("mosei", {"dataset_options": {"splits": "my/folds.json"}})
        splits = {u.video_id: u.split for u in read_dataset("mosei", mosei.url, config, mosei.options).utterances}
        assert splits["-3g5yACwYnA"] == "train" and splits["_0efYOjQYRc"] == "test" and splits["81406"] == "none"
    finally:
        fs.rm_file(f"{path}/my/folds.json")


def test_reading_leaves_no_mirror(mosei: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = read_dataset("mosei", mosei.url, build_config("mosei"), mosei.options)
    assert result.utterances and all(u.video_path is None or u.video_path.startswith(mosei.url + "/") for u in result.utterances)
    assert all("emoprep-corpus-" not in i.source for i in result.issues) and any(mosei.url in i.source for i in result.issues)
    assert list(tmp_path.iterdir()) == []


def test_errors_name_the_url_not_the_mirror(object_store) -> None:
    empty = object_store.bucket() + "/nothing"
    with pytest.raises(DatasetError) as mosei_error:
        read_dataset("mosei", empty, build_config("mosei"), object_store.options)
    with pytest.raises(DatasetError) as iemocap_error:
        read_dataset("iemocap", empty, build_config("iemocap"), object_store.options)
    for error in (mosei_error, iemocap_error):
        assert str(error.value).startswith(empty) and "emoprep-corpus-" not in str(error.value)


def test_credentials_in_the_root_url_are_refused_unshown(mosei: Corpus) -> None:
    url = mosei.url.replace("s3://", "s3://someone:planted-secret@")
    with pytest.raises(SetupError) as error:
        read_dataset("mosei", url, build_config("mosei"), mosei.options)
    assert "planted-secret" not in str(error.value) and "--storage-option" in str(error.value)


def test_demo_still_takes_a_local_root_only(object_store) -> None:
    with pytest.raises(SetupError, match="--dataset demo reads a local folder only.*--dataset mosei and iemocap"):
        read_dataset("demo", object_store.bucket() + "/demo", build_config("demo"), object_store.options)


def test_cli_extracts_mosei_from_a_bucket(mosei: Corpus, object_store, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from emoprep.cli import EXIT_FAILURES, main

    out = tmp_path / "shards"
    result = CliRunner().invoke(main, ["extract", "--dataset", "mosei", "--root", mosei.url, "--out", str(out),
                                       *object_store.option_flags(), "--modalities", "text,logmel", "--limit", "3",
                                       "--synchronous", "--quiet"])
    # complete, with the failures of the video whose media are not in the bucket
    assert result.exit_code == EXIT_FAILURES, result.output
    assert (out / "manifest.json").is_file() and sum(pq.read_table(p).num_rows for p in out.glob("*-of-*.parquet")) == 3
    assert "missing_media" in {f["error_type"] for f in pq.read_table(out / "failures.parquet").to_pylist()}
    assert object_store.options["secret"] not in result.output


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_check_raw_on_the_bucket_reports_what_it_reports_on_the_local_copy(dataset: str, request: pytest.FixtureRequest,
                                                                           object_store) -> None:
    """``emoprep check-raw --root s3://...``: the same counts, classes and problems as on the local tree,
    problems naming URLs; a prefix holding nothing, or a corpus without its folders, is a layout error."""
    from click.testing import CliRunner

    from emoprep.cli import EXIT_SETUP, main

    corpus: Corpus = request.getfixturevalue(dataset)
    options = [f"--storage-option={k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in corpus.options.items()]
    local = CliRunner().invoke(main, ["check-raw", "--dataset", dataset, "--root", str(corpus.local)])
    remote = CliRunner().invoke(main, ["check-raw", "--dataset", dataset, "--root", corpus.url, *options])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert remote.output.replace(corpus.url, str(corpus.local)) == local.output
    assert "missing media" in remote.output and corpus.url in remote.output  # the bucket's absent recordings

    empty = CliRunner().invoke(main, ["check-raw", "--dataset", dataset, "--root", object_store.bucket() + "/nothing", *options])
    assert empty.exit_code == EXIT_SETUP and "nothing under this prefix" in empty.output
    fs, path = filesystem(corpus.url, corpus.options)
    partial = object_store.bucket() + f"/partial-{dataset}"
    fs.pipe(f"{partial.split('://', 1)[1]}/README.txt", b"not a corpus")
    broken = CliRunner().invoke(main, ["check-raw", "--dataset", dataset, "--root", partial, *options])
    assert broken.exit_code == EXIT_SETUP and "ERROR" in broken.output, broken.output


@pytest.mark.parametrize("dataset", ["mosei", "iemocap"])
def test_a_url_root_probes_every_recording_ahead(dataset: str, request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Both corpus readers hand every recording they will check to ``probe_ahead`` (probed several at a
    time) before their first segment, so no probe waits on another."""
    from emoprep.extraction.readers.segments import SegmentCleaner

    corpus: Corpus = request.getfixturevalue(dataset)
    ahead: list[str] = []
    real = SegmentCleaner.probe_ahead

    def recording(self: SegmentCleaner, files) -> None:  # noqa: ANN001
        files = [f for f in files if f]
        ahead.extend(files)
        real(self, files)

    monkeypatch.setattr(SegmentCleaner, "probe_ahead", recording)
    result = read_dataset(dataset, corpus.url, _config(dataset), corpus.options)
    used = {p for u in result.utterances for p in (u.video_path, u.audio_path) if p}
    assert used and used <= set(ahead) and all(p.startswith(corpus.url + "/") for p in ahead)
