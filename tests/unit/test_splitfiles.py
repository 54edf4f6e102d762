import pytest

from emoprep.extraction.readers.splitfiles import parse_split_json, parse_split_table
from emoprep.errors import DatasetError


def test_json_and_table_give_the_same_map() -> None:
    a = parse_split_json('{"train": ["v1", "v2"], "dev": ["v3"], "test": ["v4"]}', "s.json")
    b = parse_split_table("id,split\nv1,train\nv2\ttrain\nv3,valid\nv4,test\n".replace("\t", ","), "s.csv")
    assert a.assignments == b.assignments == {"v1": "train", "v2": "train", "v3": "valid", "v4": "test"}
    assert a.lookup("v3_0", "v3") == "valid" and a.lookup("x_0", "x") == "none"


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_split_json, '{"train": ["v1"], "test": ["v1"]}'),
        (parse_split_table, "v1,train\nv1,test\n"),
    ],
)
def test_an_id_in_two_splits_is_an_error_that_names_both(parse, text: str) -> None:  # noqa: ANN001
    with pytest.raises(DatasetError, match="'v1' is in both 'train' and 'test'"):
        parse(text, "splits")


def test_repeating_an_id_in_the_same_split_is_fine() -> None:
    assert parse_split_table("v1,train\nv1,train\n", "s.csv").assignments == {"v1": "train"}
