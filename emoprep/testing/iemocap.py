"""A miniature IEMOCAP release tree (sessions, dialogs, transcriptions, EmoEvaluation summaries,
media), in the real layout, for reader and extraction tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..extraction.readers.layouts import IemocapLayout
from .media import write_tone_video, write_tone_wav


@dataclass(frozen=True)
class IemocapTurn:
    """One turn of a mini IEMOCAP dialog.

    ``text=None`` writes no transcription line for the turn.  ``vad`` is the summary's mean
    [valence, activation, dominance].  The dialog is the turn name without its last ``_`` part.
    """

    turn: str
    start: float
    end: float
    code: str
    vad: tuple[float, float, float] = (2.5, 2.5, 2.5)
    text: str | None = "..."

    @property
    def dialog(self) -> str:
        return self.turn.rsplit("_", 1)[0]

    @property
    def session(self) -> int:
        return int(self.turn[3:5])


def default_iemocap_turns() -> list[IemocapTurn]:
    """Dialogs in all five sessions with every code and the transcription irregularities.

    Ses01F_impro01 and Ses01M_script01_1 are rich (out-of-set codes xxx/sur/oth/fea/dis, text with
    ``[LAUGHTER]`` and a second ``]:``, a turn without a transcription line); the other sessions have
    a few turns each so that leave-one-session-out splits have something to split.
    """
    T = IemocapTurn
    return [
        T("Ses01F_impro01_F000", 6.2901, 8.2357, "neu", (2.5, 2.5, 2.5), "Excuse me."),
        T("Ses01F_impro01_M000", 8.5, 10.0, "fru", (2.0, 3.5, 3.0), "Do you have your forms?"),
        T("Ses01F_impro01_F001", 10.01, 11.3925, "xxx", (2.5, 3.0, 3.0), "Yeah."),
        T("Ses01F_impro01_M001", 11.5, 13.25, "hap", (4.0, 3.0, 3.5), "Okay, [LAUGHTER] that works]: fine"),
        T("Ses01F_impro01_F002", 13.3, 14.9, "ang", (1.5, 4.0, 4.0), None),
        T("Ses01F_impro01_M002", 15.0, 16.0, "oth", (3.0, 3.0, 3.0), "Hm."),
        T("Ses01M_script01_1_F000", 0.8, 2.4, "exc", (4.5, 4.0, 3.0), "What a day!"),
        T("Ses01M_script01_1_M000", 2.5, 4.0, "sad", (1.5, 2.0, 2.0), "I lost it."),
        T("Ses01M_script01_1_M001", 4.1, 5.0, "sur", (3.0, 4.0, 3.0), "No way."),
        T("Ses01M_script01_1_F001", 5.1, 6.5, "neu", (3.0, 2.5, 3.0), "Fine, fine."),
        T("Ses01M_script01_1_F002", 6.6, 7.2, "fea", (2.0, 3.5, 2.0), "Careful!"),
        T("Ses01M_script01_1_M002", 7.3, 8.0, "dis", (1.5, 3.0, 3.5), "Gross."),
        T("Ses02F_impro02_F000", 1.0, 2.5, "hap", (4.0, 3.0, 3.0), "Lovely."),
        T("Ses02F_impro02_M000", 2.6, 4.0, "ang", (1.0, 4.5, 4.5), "Stop it."),
        T("Ses03M_impro03_M000", 0.5, 1.9, "sad", (2.0, 2.0, 2.0), "It's over."),
        T("Ses03M_impro03_F000", 2.0, 3.3, "exc", (4.5, 4.5, 3.5), "We won!"),
        T("Ses04F_script02_2_F000", 0.2, 1.4, "fru", (2.0, 3.5, 3.0), "Again?"),
        T("Ses04F_script02_2_M000", 1.5, 2.7, "neu", (3.0, 3.0, 3.0), "Yes."),
        T("Ses05M_impro05_M000", 0.3, 1.8, "ang", (1.5, 4.0, 4.0), "Enough."),
        T("Ses05M_impro05_F000", 1.9, 3.0, "neu", (3.0, 2.0, 3.0), "Sure."),
    ]


_ANNOTATOR_LINES = (
    "C-E2:\tNeutral;\t()",
    "C-E3:\tNeutral; Frustration;\t()",
    "C-F2:\t;\t()",
    "A-E3:\tval 3; act 2; dom  2;\t()",
    "A-E4:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)",
)


@dataclass
class IemocapTree:
    root: Path
    turns: list[IemocapTurn]
    dialogs: list[str]


def build_iemocap_tree(
    root: Path,
    turns: Sequence[IemocapTurn] | None = None,
    *,
    media: bool = False,
    no_video: Iterable[str] = (),
    no_wav: Iterable[str] = (),
    extra_transcript_lines: Mapping[str, Sequence[str]] | None = None,
    lf_only: Iterable[str] = ("Ses02F_impro02",),
) -> IemocapTree:
    """Write an ``IEMOCAP_full_release``-style tree under ``root``.

    Transcriptions and EmoEvaluation files use CRLF (except dialogs in ``lf_only``), tab-separated
    summary lines with 4-decimal times, annotator lines (including the empty ``C-F2:\\t;\\t()``), the
    ``%`` header, and sit beside the Categorical/ sub-folder and a macOS ``._`` resource-fork file
    that a reader must not take for dialogs.  Transcriptions add ``M: Yeah.``-style lines, an
    ``XX`` turn and an id without ``_`` (plus ``extra_transcript_lines[dialog]``).  With
    ``media=True`` each dialog gets a side-by-side avi (red left half, blue right) with stereo audio,
    a stereo dialog wav (300 Hz left channel, 600 Hz right) and per-turn sentence wavs.
    """
    root = Path(root)
    turns = list(default_iemocap_turns() if turns is None else turns)
    extra = extra_transcript_lines or {}
    no_video, no_wav, lf_only = set(no_video), set(no_wav), set(lf_only)
    dialogs = list(dict.fromkeys(t.dialog for t in turns))  # in order of first appearance
    for dialog in dialogs:
        dturns = [t for t in turns if t.dialog == dialog]
        sess = IemocapLayout(root).session(dturns[0].session)
        nl = "\n" if dialog in lf_only else "\r\n"
        emo = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for t in dturns:
            emo.append(
                f"[{t.start:.4f} - {t.end:.4f}]\t{t.turn}\t{t.code}\t[{t.vad[0]:.4f}, {t.vad[1]:.4f}, {t.vad[2]:.4f}]"
            )
            emo.extend(_ANNOTATOR_LINES)
            emo.append("")
        emo_dir = IemocapLayout.emo_evaluation_dir(sess)
        (emo_dir / "Categorical").mkdir(parents=True, exist_ok=True)
        (emo_dir / f"{dialog}.txt").write_bytes(nl.join(emo).encode("utf-8") + nl.encode())
        (emo_dir / "Categorical" / f"{dialog}_e2_cat.txt").write_bytes(
            nl.join(f"{t.turn} :Neutral state; ()" for t in dturns).encode() + nl.encode()
        )
        (emo_dir / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
        gender = dialog[5]
        other = "M" if gender == "F" else "F"
        lines = []
        for t in dturns:
            if t.text is not None:
                lines.append(f"{t.turn} [{t.start:08.4f}-{t.end:08.4f}]: {t.text}")
        lines[1:1] = [
            f"{other}: Yeah.",
            f"{dialog}_{other}XX0 [020.0000-021.0000]: overlapping crosstalk",
            f"{gender} [021.5000-022.0000]: [BREATHING]",
        ]
        lines += list(extra.get(dialog, ()))
        tpath = IemocapLayout.transcription(sess, dialog)
        tpath.parent.mkdir(parents=True, exist_ok=True)
        tpath.write_bytes(nl.join(lines).encode("utf-8") + nl.encode())
        seconds = max(t.end for t in dturns) + 0.5
        avi = IemocapLayout.dialog_avi(sess, dialog)
        wav = IemocapLayout.dialog_wav(sess, dialog)
        if dialog not in no_video:
            if media:
                write_tone_video(avi, seconds, size=(96, 48), halves=True, freqs=(300.0, 600.0))
            else:
                avi.parent.mkdir(parents=True, exist_ok=True)
                avi.write_bytes(b"")
        if dialog not in no_wav:
            if media:
                write_tone_wav(wav, seconds, (300.0, 600.0))
            else:
                wav.parent.mkdir(parents=True, exist_ok=True)
                wav.write_bytes(b"")
        if media:
            for t in dturns:
                write_tone_wav(IemocapLayout.sentence_wav(sess, dialog, t.turn), t.end - t.start, (300.0,))
    return IemocapTree(root=root, turns=turns, dialogs=dialogs)
