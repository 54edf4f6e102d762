"""One declaration per corpus layout: the test trees are written where the readers and check-raw look."""

from __future__ import annotations

from pathlib import Path

from emoprep.extraction.readers.layouts import IemocapLayout, MoseiLayout
from emoprep.testing.iemocap import build_iemocap_tree
from emoprep.testing.mosei import build_mosei_tree


def test_mosei_tree_follows_the_layout(tmp_path: Path) -> None:
    tree = build_mosei_tree(tmp_path / "m", csd=True)
    layout = MoseiLayout(tree.root)
    for rel, _ in MoseiLayout.FOLDERS:
        assert (tree.root / rel).is_dir(), rel
    assert {p.stem for p in layout.transcripts()} == set(tree.videos)
    assert layout.video_ids_with_audio() == tree.wav_videos
    assert tree.label_csvs == layout.label_csvs()
    assert next(p for p in layout.sdk_label_candidates() if p.is_file()) == tree.csd_path == layout.sdk_labels


def test_mosei_transcript_line() -> None:
    assert MoseiLayout.transcript_line("v_", 3, "0.5", "1.25", "a ___ b") == "v____3___0.5___1.25___a ___ b"


def test_iemocap_tree_follows_the_layout(tmp_path: Path) -> None:
    tree = build_iemocap_tree(tmp_path / "i")
    layout = IemocapLayout(tree.root)
    sessions = layout.sessions()
    assert [IemocapLayout.session_number(s) for s in sessions] == [1, 2, 3, 4, 5]
    for rel, _ in IemocapLayout.folders([s.name for s in sessions]):
        assert (tree.root / rel).is_dir(), rel
    dialogs = [p.stem for s in sessions for p in IemocapLayout.emo_evaluations(s)]
    assert sorted(dialogs) == sorted(tree.dialogs)  # the ._ resource forks are not dialogs
    for session in sessions:
        for emo in IemocapLayout.emo_evaluations(session):
            assert IemocapLayout.transcription(session, emo.stem).is_file()
            assert IemocapLayout.dialog_wav(session, emo.stem).is_file()
            assert IemocapLayout.dialog_avi(session, emo.stem).is_file()
