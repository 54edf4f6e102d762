import pytest

from emoprep.extraction.tokens import tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't know.", ["I", "do", "n't", "know", "."]),
        ("It's what we've got, isn't it?", ["It", "'s", "what", "we", "'ve", "got", ",", "is", "n't", "it", "?"]),
        ("Can't WON'T", ["Ca", "n't", "WO", "N'T"]),
        ("well-known 3.5 U.S.", ["well-known", "3.5", "U.S", "."]),
        ("Wait... what", ["Wait", "...", "what"]),
        ("I [LAUGHTER] agree", ["I", "agree"]),
        ("", []),
        ("   ", []),
    ],
)
def test_glove_840b_convention(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_case_is_kept_and_unicode_letters_survive() -> None:
    assert tokenize("Café Zürich naïve 東京") == ["Café", "Zürich", "naïve", "東京"]


def test_typographic_apostrophe_splits_like_ascii() -> None:
    assert tokenize("it\u2019s") == tokenize("it's") == ["it", "'s"]


def test_nonverbal_markers_can_be_kept() -> None:
    assert "LAUGHTER" in tokenize("I [LAUGHTER] agree", drop_nonverbal=False)
