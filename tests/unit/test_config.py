import dataclasses

import pytest

from emoprep.extraction.config import build_config
from emoprep.errors import SetupError


def test_pipeline_spec_defaults_are_loaded() -> None:
    cfg = build_config("demo")
    assert cfg.shard_size == 8
    assert "text" in cfg.modalities


def test_overrides_win_and_change_the_hash() -> None:
    base = build_config("demo")
    other = build_config("demo", {"acoustic": {"window_s": 0.5}})
    assert other.acoustic.window_s == 0.5
    assert other.config_hash != base.config_hash
    assert build_config("demo").config_hash == base.config_hash


def test_glove_path_is_not_hashed_but_its_checksum_is() -> None:
    cfg = build_config("demo")
    a = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, glove="/a/g.txt", glove_checksum="abc"))
    b = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, glove="/b/g.txt", glove_checksum="abc"))
    c = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, glove="/a/g.txt", glove_checksum="def"))
    assert a.config_hash == b.config_hash != c.config_hash


def test_spec_file_layer(tmp_path) -> None:  # noqa: ANN001
    spec = tmp_path / "run.yaml"
    spec.write_text("shard_size: 3\nvisual:\n  face_size: 112\n")
    cfg = build_config("demo", {"shard_size": 5}, spec)
    assert cfg.shard_size == 5 and cfg.visual.face_size == 112


@pytest.mark.parametrize("overrides", [{"modalities": ["smell"]}, {"text": {"nope": 1}}, {"shard_size": 0}])
def test_bad_settings_are_setup_errors(overrides: dict) -> None:
    with pytest.raises(SetupError):
        build_config("demo", overrides)


def test_nested_settings_become_hashable(tmp_path) -> None:  # noqa: ANN001
    """au_options may come as a YAML mapping or CLI pairs: both give the same frozen, hashable config."""
    spec = tmp_path / "run.yaml"
    spec.write_text("visual:\n  au_backend: openface\n  au_options:\n    csv_dir: /data/of\n")
    from_yaml = build_config("demo", spec=spec)
    from_cli = build_config("demo", {"visual": {"au_backend": "openface", "au_options": [("csv_dir", "/data/of")]}})
    assert from_yaml.visual.au_options == from_cli.visual.au_options == (("csv_dir", "/data/of"),)
    assert hash(from_yaml) == hash(from_cli) and from_yaml.config_hash == from_cli.config_hash
