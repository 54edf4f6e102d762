"""Reader options are declared once (emoprep.extraction.config.reader_options), typed, validated before any work,
and recorded in the config exactly as the YAML specs used to record them (same config hash)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emoprep.extraction.config import build_config, pipeline_defaults
from emoprep.extraction.config.reader_options import (
    OPTIONS,
    DemoOptions,
    IemocapOptions,
    MoseiOptions,
    RecordingsOptions,
    options_markdown,
    parse_options,
)
from emoprep.errors import SetupError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_reader_has_an_options_class() -> None:
    from emoprep.extraction.readers import READERS

    assert set(OPTIONS) == set(READERS)


@pytest.mark.parametrize(
    ("dataset", "recorded"),
    [
        # What the YAML specs' dataset_options gave before the defaults moved to the dataclasses:
        # the hashed representation of a default run must not change.
        ("mosei", (("keep_unlabelled", "False"), ("label_tolerance", "0.05"), ("labels", "auto"), ("splits", "standard"))),
        ("iemocap", (("classes", "6"), ("seed", "0"), ("split", "random"))),
        ("manifest", ()),
        ("demo", (("videos", "12"),)),
    ],
)
def test_defaults_are_recorded_as_before(dataset: str, recorded: tuple) -> None:
    assert build_config(dataset).dataset_options == recorded


def test_given_options_are_recorded_as_given() -> None:
    cfg = build_config("mosei", {"dataset_options": {"splits": "mesm", "keep_unlabelled": "true"}})
    assert dict(cfg.dataset_options) == {
        "keep_unlabelled": "true",
        "label_tolerance": "0.05",
        "labels": "auto",
        "splits": "mesm",
    }


@pytest.mark.parametrize("dataset", ["mosei", "iemocap", "demo"])
def test_specs_do_not_repeat_the_defaults(dataset: str) -> None:
    assert "dataset_options" not in pipeline_defaults(dataset)


def test_unknown_option_fails_in_build_config_naming_the_known_ones() -> None:
    with pytest.raises(SetupError, match=r"unknown option\(s\) split for --dataset mosei; known: .*splits"):
        build_config("mosei", {"dataset_options": {"split": "mesm"}})
    with pytest.raises(SetupError, match="known: label_names"):
        build_config("manifest", {"dataset_options": {"labels": "x"}})


def test_spec_file_options_are_validated(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"dataset_options": {"classes": 5}}))
    with pytest.raises(SetupError, match="classes='5': use 6, 4"):
        build_config("iemocap", spec=spec)


@pytest.mark.parametrize(
    ("cls", "key", "value", "message"),
    [
        (MoseiOptions, "keep_unlabelled", "maybe", "use true or false"),
        (MoseiOptions, "labels", "csv", "use auto, sdk, mturk"),
        (MoseiOptions, "label_tolerance", "soon", "use a number"),
        (MoseiOptions, "label_tolerance", "-1", "seconds >= 0"),
        (MoseiOptions, "splits", "", "give a value"),
        (IemocapOptions, "seed", "1.5", "whole number"),
        (IemocapOptions, "split", "session:6", "different sessions"),
        (DemoOptions, "videos", "ten", "at least 6"),
        (DemoOptions, "keep_unlabelled", "maybe", "use true or false"),
    ],
)
def test_bad_values_say_what_is_allowed(cls, key: str, value: str, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        parse_options(cls, [(key, value)])


def test_values_are_typed() -> None:
    m = parse_options(MoseiOptions, [("keep_unlabelled", "yes"), ("labels", "SDK"), ("label_tolerance", "0.25")])
    assert (m.keep_unlabelled, m.labels, m.label_tolerance, m.splits) == (True, "sdk", 0.25, "standard")
    i = parse_options(IemocapOptions, [("classes", "4"), ("seed", "7")])
    assert (i.classes, i.seed, i.split) == (4, 7, "random")
    assert parse_options(RecordingsOptions, [("label_names", "b, a,")]).label_name_tuple == ("b", "a")
    assert parse_options(RecordingsOptions, []).label_name_tuple is None
    assert parse_options(DemoOptions, [("videos", "60"), ("splits", "none")]).videos == 60


def test_readme_table_is_generated_from_the_dataclasses() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- reader options: generated -->") + len("<!-- reader options: generated -->\n")
    end = text.index("\n<!-- /reader options -->")
    assert text[start:end] == options_markdown(), "regenerate with emoprep.extraction.config.reader_options.options_markdown()"
