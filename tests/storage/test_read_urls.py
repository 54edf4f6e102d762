"""The readers on a shard folder in S3 (moto's server) give what they give on the local copy, and
``inspect --verify`` finds an object that was altered there."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

import cli
import emoprep
from emoprep.format.manifest import folder_of, has_manifest, manifest_path
from emoprep.format.names import MANIFEST, is_shard_name
from emoprep.format.reader import read_row_group, row_groups, shard_paths
from emoprep.format.storage import Folder
from emoprep.format.verify import verify_output
from emoprep.train.data import ShardStream

LIGHT = ["utterance_id", "split", "emotions", "acoustic"]


def test_the_manifest_functions_take_a_url(s3_shards: str, demo_shards: Path, object_store) -> None:  # noqa: ANN001
    opts = object_store.options
    assert has_manifest(s3_shards, opts) and not has_manifest(s3_shards + "-nothing", opts)
    assert manifest_path(s3_shards, opts) == f"{s3_shards}/{MANIFEST}"
    assert folder_of(f"{s3_shards}/{MANIFEST}", opts) == folder_of(s3_shards, opts) == s3_shards
    assert emoprep.read_manifest(s3_shards, storage_options=opts) == emoprep.read_manifest(demo_shards)
    assert emoprep.read_manifest(f"{s3_shards}/{MANIFEST}", storage_options=opts) == emoprep.read_manifest(demo_shards)
    with pytest.raises(FileNotFoundError, match="not found") as caught:
        emoprep.read_manifest(s3_shards + "-nothing", storage_options=opts)
    assert opts["secret"] not in str(caught.value)


def test_read_shards_and_iter_shards_on_s3_equal_local(s3_shards: str, demo_shards: Path, object_store) -> None:  # noqa: ANN001
    opts = object_store.options
    assert emoprep.read_shards(s3_shards, storage_options=opts).equals(emoprep.read_shards(demo_shards))
    assert emoprep.read_shards(s3_shards, "train", LIGHT, storage_options=opts).equals(
        emoprep.read_shards(demo_shards, "train", LIGHT))
    remote = list(emoprep.iter_shards(s3_shards, columns=LIGHT, batch_rows=5, storage_options=opts))
    local = list(emoprep.iter_shards(demo_shards, columns=LIGHT, batch_rows=5))
    assert len(remote) == len(local) > 1
    assert all(r.equals(loc) for r, loc in zip(remote, local))
    assert [Path(str(p)).name for p in shard_paths(s3_shards, storage_options=opts)] == \
           [p.name for p in shard_paths(demo_shards)]
    assert all(str(p).startswith(s3_shards + "/") for p in shard_paths(s3_shards, storage_options=opts))


def test_row_groups_carry_their_options_but_never_show_them(s3_shards: str, object_store) -> None:  # noqa: ANN001
    groups = row_groups(s3_shards, storage_options=object_store.options)
    assert groups and all(str(g.path).startswith("s3://") for g in groups)
    assert object_store.options["secret"] not in repr(groups)
    assert read_row_group(groups[-1], ["utterance_id"]).num_rows == groups[-1].rows


def _ids_per_rank(folder: str | Path, world: int, **options) -> list[list[str]]:  # noqa: ANN003
    streams = [ShardStream(folder, "train", ["utterance_id"], shuffle=True, seed=3, buffer_size=4, rank=r,
                           world_size=world, **options) for r in range(world)]
    for s in streams:
        s.set_epoch(2)
    return [[row["utterance_id"] for row in s] for s in streams]


def test_shard_stream_on_s3_deals_the_same_rows_to_each_rank(s3_shards: str, demo_shards: Path, object_store) -> None:  # noqa: ANN001
    remote = _ids_per_rank(s3_shards, 2, storage_options=object_store.options)
    assert remote == _ids_per_rank(demo_shards, 2)
    train_ids = emoprep.read_shards(demo_shards, "train", ["utterance_id"]).column("utterance_id").to_pylist()
    assert sorted(remote[0] + remote[1]) == sorted(train_ids) and all(remote)


def test_verify_on_s3_passes_then_finds_an_altered_shard(object_store, demo_shards: Path, upload) -> None:  # noqa: ANN001
    url = upload(demo_shards, object_store.bucket() + "/shards", object_store.options)
    folder = Folder.of(url, object_store.options)
    checked, problems = verify_output(url, object_store.options)
    assert problems == [] and checked > 1
    runner = CliRunner()
    ok = runner.invoke(cli.main, ["inspect", url, "--verify", *object_store.option_flags()])
    assert ok.exit_code == 0, ok.output
    shard = next(n for n in folder.names() if is_shard_name(n))
    data = bytearray(folder.read_bytes(shard))
    data[len(data) // 2] ^= 0xFF  # same size: only the sha256 can tell
    folder.write_bytes(shard, bytes(data))
    checked, problems = verify_output(url, object_store.options)
    assert [(p.file, p.kind) for p in problems] == [(shard, "sha256")]
    bad = runner.invoke(cli.main, ["inspect", url, "--verify", *object_store.option_flags()])
    assert bad.exit_code == 1 and f"{shard}: content differs" in bad.output
    assert object_store.options["secret"] not in bad.output


def test_inspect_on_s3_prints_what_it_prints_for_the_local_copy(s3_shards: str, demo_shards: Path,
                                                                object_store) -> None:  # noqa: ANN001
    runner = CliRunner()
    remote = runner.invoke(cli.main, ["inspect", s3_shards, *object_store.option_flags()])
    local = runner.invoke(cli.main, ["inspect", str(demo_shards)])
    assert remote.exit_code == local.exit_code == 0, remote.output
    assert remote.output == local.output and "rows:" in remote.output


def test_inspect_of_a_prefix_without_manifest_says_so(object_store) -> None:  # noqa: ANN001
    empty = object_store.bucket()
    result = CliRunner().invoke(cli.main, ["inspect", empty, *object_store.option_flags()])
    assert result.exit_code == 2 and "not found" in result.output and object_store.options["secret"] not in result.output


def test_loader_workers_read_their_row_groups_from_s3(s3_shards: str, demo_shards: Path, object_store) -> None:  # noqa: ANN001
    from torch.utils.data import DataLoader

    stream = ShardStream(s3_shards, "train", ["utterance_id"], rank=0, world_size=1, storage_options=object_store.options)
    rows = list(DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context="fork"))
    train_ids = emoprep.read_shards(demo_shards, "train", ["utterance_id"]).column("utterance_id").to_pylist()
    assert sorted(r["utterance_id"] for r in rows) == sorted(train_ids)


def test_a_folder_replaced_by_a_new_run_is_read_anew(object_store, upload, tmp_path: Path) -> None:  # noqa: ANN001
    """The reader keeps recently opened shards open; an object rewritten under the same key (a new
    run into the same prefix) is opened again, not read through the footer of the object it replaced."""
    from emoprep.testing.shards import build_shard_folder

    opts = object_store.options
    rows = {"train": 24, "valid": 8, "test": 8}
    first = build_shard_folder(tmp_path / "first", rows, seed=1)
    second = build_shard_folder(tmp_path / "second", {**rows, "train": 20}, seed=2)  # other bytes, other row counts
    url = upload(first, object_store.bucket() + "/replaced", opts)

    def streamed() -> list:
        return [read_row_group(g, LIGHT) for g in row_groups(url, "train", storage_options=opts)]

    assert pa.concat_tables(streamed()).equals(emoprep.read_shards(first, "train", LIGHT))
    upload(second, url, opts)
    assert pa.concat_tables(streamed()).equals(emoprep.read_shards(second, "train", LIGHT))
