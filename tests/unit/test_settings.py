"""emoprep.settings: one way from raw values (YAML-typed or command-line strings) to a frozen, typed
dataclass; and the three configurations (extraction, reader options, training) all built with it,
so a bad type, an unknown key or an out-of-range value is a SetupError naming the key, before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest

from emoprep.errors import SetupError
from emoprep.extraction.config import build_config
from emoprep.extraction.config.reader_options import IemocapOptions, MoseiOptions, parse_options
from emoprep.settings import PAIRS, build, coerce, setting
from emoprep.train.config import parse_sets, resolve_config


@dataclass(frozen=True)
class Inner:
    size: int = 2
    scale: float = 1.0

    def validate(self) -> None:
        if self.size < 1:
            raise SetupError(f"inner.size must be at least 1, got {self.size}")


@dataclass(frozen=True)
class Outer:
    name: str
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    word: str = setting("x", "a closed set", choices=("x", "y"))
    path: str | None = None
    items: tuple[str, ...] = ("p",)
    pair: tuple[int, float] = (1, 2.0)
    options: PAIRS = ()
    inner: Inner = field(default_factory=Inner)


# --- the coercion module ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "kind", "typed"), [
    (True, bool, True), ("yes", bool, True), ("Off", bool, False), ("0", bool, False),
    (3, int, 3), ("3", int, 3), (2.0, int, 2), ("1e3", int, 1000),
    (1, float, 1.0), ("1e-3", float, 0.001), (0.5, float, 0.5),
    ("text", str, "text"), ("", str, ""),
    (None, str | None, None), ("", int | None, None), ("4", int | None, 4),
    (["a", "b"], tuple[str, ...], ("a", "b")), ("a, b", tuple[str, ...], ("a", "b")), (["1"], list[int], [1]),
    ([3, "0.5"], tuple[int, float], (3, 0.5)),
    ({"b": 2, "a": True}, PAIRS, (("a", "True"), ("b", "2"))), ([("k", "v")], PAIRS, (("k", "v"),)),
    ("B", Literal["a", "b"], "b"),
])
def test_values_are_coerced_to_the_annotated_type(raw: object, kind: object, typed: object) -> None:
    out = coerce(raw, kind, "key")
    assert out == typed and type(out) is type(typed)


@pytest.mark.parametrize(("raw", "kind", "expected"), [
    ("maybe", bool, "use true or false"), (1, bool, "use true or false"),
    ("ten", int, "use a whole number"), (1.5, int, "use a whole number"), (True, int, "use a whole number"),
    ("fast", float, "use a number"), ("nan", float, "use a number"), (False, float, "use a number"),
    (5, str, "use a string"), (None, str, "give a value"), (3, tuple[str, ...], "use a list"),
    ([1], tuple[int, int], "use a list of 2 values"), ("c", Literal["a", "b"], "use a, b"),
    ("x=1", PAIRS, "use a mapping"),
])
def test_bad_values_name_the_key_the_value_and_what_is_expected(raw: object, kind: object, expected: str) -> None:
    with pytest.raises(SetupError) as info:
        coerce(raw, kind, "sec.key")
    assert str(info.value).startswith(f"sec.key={raw!r}: {expected}")


def test_build_makes_the_frozen_dataclass_with_nested_sections_on_their_defaults() -> None:
    out = build(Outer, {"name": "n", "flag": "true", "mode": "B", "word": "Y", "items": "q,r",
                        "options": {"z": 1}, "inner": {"size": "3"}})
    assert out == Outer("n", True, "b", "y", None, ("q", "r"), (1, 2.0), (("z", "1"),), Inner(3, 1.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.name = "m"  # type: ignore[misc]
    assert hash(out) == hash(build(Outer, {"name": "n", "flag": True, "mode": "b", "word": "y", "items": ["q", "r"],
                                           "options": [("z", "1")], "inner": {"size": 3}}))
    on_top = build(Outer, {"inner": {"scale": 2}}, base=out)
    assert on_top.inner == Inner(3, 2.0) and on_top.items == ("q", "r")


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "n", "colour": 1}, "unknown setting(s) colour; known: flag, inner, items, mode, name, options, pair, path, word"),
    ({"name": "n", "inner": {"sise": 1}}, "unknown setting(s) inner.sise; known: scale, size"),
    ({"name": "n", "inner": {"size": "big"}}, "inner.size='big': use a whole number"),
    ({"name": "n", "inner": {"size": 0}}, "inner.size must be at least 1, got 0"),
    ({"name": "n", "inner": 5}, "inner must be a mapping of settings, got 5"),
    ({"name": "n", "word": "z"}, "word='z': use x, y"),
    ({}, "Outer: "),
])
def test_build_refuses_unknown_keys_bad_values_and_what_validate_refuses(values: dict, message: str) -> None:
    with pytest.raises(SetupError) as info:
        build(Outer, values)
    assert str(info.value).startswith(message)


def test_validate_false_types_without_range_checks_nested_sections_too() -> None:
    """How a run's recorded configuration is read back (emoprep.train.config.load_run_config)."""
    assert build(Outer, {"name": "n", "inner": {"size": "0"}}, validate=False).inner == Inner(0, 1.0)
    with pytest.raises(SetupError, match="inner.size='x'"):
        build(Outer, {"name": "n", "inner": {"size": "x"}}, validate=False)


def test_hint_replaces_what_the_type_allows() -> None:
    @dataclass(frozen=True)
    class Hinted:
        count: int = setting(1, hint="use a count of videos")

    with pytest.raises(SetupError, match=r"^option count='x': use a count of videos$"):
        build(Hinted, {"count": "x"}, prefix="option ")


# --- the three configurations: the same kind of failure, naming the key -------------------------

def _extract(values: dict) -> None:
    build_config("demo", values)


def _reader(values: dict) -> None:
    (key, value), = values.items()
    parse_options(IemocapOptions if key in ("classes", "seed", "split") else MoseiOptions, [(key, value)])


def _train(values: list[str]) -> None:
    resolve_config("mesm", sets=parse_sets(values))


BAD = [
    # (what, build, values, the key the message names)
    ("extract: bad type", _extract, {"visual": {"face_size": "big"}}, "visual.face_size='big'"),
    ("extract: bad type, top level", _extract, {"shard_size": "many"}, "shard_size='many'"),
    ("extract: bad type, list", _extract, {"acoustic": {"backends": ["disvoice", 3]}}, "acoustic.backends="),
    ("extract: unknown key", _extract, {"visual": {"face_sise": 64}}, "visual.face_sise"),
    ("extract: unknown key, top level", _extract, {"shards": 3}, "unknown setting(s) shards"),
    ("extract: out of range", _extract, {"visual": {"jpeg_quality": 101}}, "visual.jpeg_quality"),
    ("extract: out of range, top level", _extract, {"shard_size": 0}, "shard_size must be at least 1"),
    ("extract: not a choice", _extract, {"modalities": ["text", "smell"]}, "modalities="),
    ("reader: bad type", _reader, {"seed": "soon"}, "option seed='soon'"),
    ("reader: unknown key", _reader, {"tolerance": "1"}, "unknown option(s) tolerance"),
    ("reader: out of range", _reader, {"label_tolerance": "-1"}, "option label_tolerance=-1.0"),
    ("train: bad type", _train, ["optim.lr=fast"], "optim.lr='fast'"),
    ("train: bad type, model setting", _train, ["settings.d_model=wide"], "settings.d_model='wide'"),
    ("train: bad type, top level", _train, ["seed=first"], "seed='first'"),
    ("train: unknown key", _train, ["optim.lrr=1"], "unknown setting(s) optim.lrr"),
    ("train: unknown key, model setting", _train, ["settings.q=1"], "unknown setting(s) settings.q"),
    ("train: out of range", _train, ["optim.batch_size=0"], "optim.batch_size must be at least 1"),
    ("train: out of range, model setting", _train, ["settings.p=2"], "settings.p must be in (0, 1], got 2.0"),
    ("train: not a choice", _train, ["inputs.visual=faces"], "inputs.visual must be one of auto, aus"),
]


@pytest.mark.parametrize(("build_it", "values", "names"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_every_configuration_refuses_before_any_work_naming_the_key(build_it, values, names: str) -> None:  # noqa: ANN001
    with pytest.raises(SetupError) as info:
        build_it(values)
    assert names in str(info.value)


def test_yaml_and_command_line_values_give_the_same_typed_configuration() -> None:
    from_cli = build_config("demo", {"visual": {"face_size": "112", "face_mesh": "false"}, "shard_size": "4"})
    from_yaml = build_config("demo", {"visual": {"face_size": 112, "face_mesh": False}, "shard_size": 4})
    assert from_cli == from_yaml and from_cli.config_hash == from_yaml.config_hash
    assert resolve_config("mesm", sets={"settings": {"p": "0.5"}}) == resolve_config("mesm", sets={"settings": {"p": 0.5}})


def test_model_code_gets_the_typed_settings_object() -> None:
    from emoprep.train.models.mesm import MESMSettings

    cfg = resolve_config("mesm")
    assert isinstance(cfg.settings, MESMSettings) and cfg.settings.p == 0.5
    assert cfg.to_dict()["settings"] == dataclasses.asdict(cfg.settings)
