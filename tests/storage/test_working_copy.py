"""The local working copy of a run folder on S3: pulled whole, pushed file by file (only what
changed, never a file still being written), removed on the way out; a local folder is used in place."""

from __future__ import annotations

from pathlib import Path

from emoprep.format.names import METRICS, RUN_RECORD
from emoprep.format.storage import Folder
from emoprep.format.working_copy import working_copy


def test_pull_push_only_what_changed(object_store) -> None:  # noqa: ANN001
    run = Folder.of(object_store.bucket() + "/run", object_store.options)
    run.write_text("history.jsonl", "1\n")
    run.write_text("evaluations/test-abc.json", "{}")
    with working_copy(run.location, object_store.options) as work:
        local = work.path
        assert work.remote and work.url == run.url and local.is_dir()
        assert (local / "history.jsonl").read_text() == "1\n" and (local / "evaluations" / "test-abc.json").is_file()
        with open(local / "history.jsonl", "a") as f:
            f.write("2\n")
        (local / METRICS).write_text("{}")
        (local / "last.tmp").write_bytes(b"partial")  # being written: never put
        run.remove("evaluations/test-abc.json")  # unchanged locally, so not put again
        work.push()
        assert run.read_text("history.jsonl") == "1\n2\n" and run.exists(METRICS)
        assert run.files() == sorted([METRICS, "history.jsonl"])
    assert not local.exists()


def test_a_local_run_folder_is_its_own_working_copy(tmp_path: Path) -> None:
    with working_copy(tmp_path / "run") as work:
        assert not work.remote and work.path == tmp_path / "run" and not work.holds_anything()
        work.path.mkdir()
        (work.path / RUN_RECORD).write_text("{}")
        work.push()  # nothing to put anywhere
        assert work.holds_anything()
    assert (tmp_path / "run" / RUN_RECORD).is_file()


def test_folder_files_download_and_put_on_both(object_store, tmp_path: Path) -> None:  # noqa: ANN001
    for folder in (Folder.of(tmp_path / "local"), Folder.of(object_store.bucket() + "/x", object_store.options)):
        source = tmp_path / "source.bin"
        source.write_bytes(b"\x00" * 1000)
        folder.put(source, "sub/a.bin")
        folder.put(source, "b.bin")
        assert source.exists() and folder.files() == ["b.bin", "sub/a.bin"]
        folder.download("sub/a.bin", tmp_path / "back" / folder.name)
        assert (tmp_path / "back" / folder.name).read_bytes() == source.read_bytes()
        assert folder.name == ("x" if folder.remote else "local")
