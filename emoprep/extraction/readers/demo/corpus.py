"""Build the demo corpus in the raw CMU-MOSEI layout (transcripts, MTurk label CSVs, mp4 + wav).

The labels are derivable from every modality, so a model trained on the demo can actually learn:
the words name the emotion, the voice's rate/pitch/volume follow it, and the face's colour cast,
zoom, aspect ratio and tilt follow it (see :mod:`emoprep.extraction.readers.demo.faces`).  Everything is seeded: the
same version of emoprep always builds the same corpus.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...media.encode import write_video, write_wav
from ..layouts import MoseiLayout
from .faces import render_frame
from .speech import Speaker, Voice

DEMO_VERSION = 2
EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
FPS = 15
AUDIO_RATE = 16000

VOICES: dict[str, Voice] = {
    "neutral": Voice(rate=160, pitch=50, pitch_range=40, volume=100),
    "happiness": Voice(rate=185, pitch=75, pitch_range=80, volume=120),
    "sadness": Voice(rate=115, pitch=25, pitch_range=15, volume=70),
    "anger": Voice(rate=200, pitch=45, pitch_range=70, volume=180),
    "fear": Voice(rate=215, pitch=85, pitch_range=30, volume=90),
    "surprise": Voice(rate=170, pitch=95, pitch_range=100, volume=130),
    "disgust": Voice(rate=135, pitch=35, pitch_range=50, volume=110),
}

SENTENCES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "The meeting starts at ten and ends before lunch.",
        "I read the report on the train this morning.",
        "The package arrived on Tuesday, as planned.",
    ),
    "happiness": (
        "I am so happy, this is the best day ever!",
        "We won the prize and I can't stop smiling.",
        "What a wonderful surprise party, I love it.",
    ),
    "sadness": (
        "I miss her so much, everything feels empty.",
        "It's sad that the old shop closed for good.",
        "I failed the exam and I feel really down.",
    ),
    "anger": (
        "This is outrageous, I am furious with them!",
        "Stop lying to me, I'm sick of it!",
        "They broke it again and I'm so angry.",
    ),
    "fear": (
        "I'm scared, something is moving in the dark.",
        "Please don't leave me alone, I'm terrified.",
        "I am afraid the bridge will collapse.",
    ),
    "surprise": (
        "Wow, I never expected to see you here!",
        "Really? That's amazing, I had no idea!",
        "Oh my goodness, what just happened?",
    ),
    "disgust": (
        "Ugh, this food is rotten and it smells awful.",
        "That's disgusting, I can't even look at it.",
        "Gross, there's mould all over the bread.",
    ),
}

SECONDARY = {"anger": "disgust", "fear": "surprise", "happiness": "surprise", "sadness": "fear"}


@dataclass(frozen=True)
class Clip:
    video_id: str
    clip_id: int
    emotion: str
    secondary: str | None
    text: str
    start_s: float
    end_s: float
    labelled: bool


def _video_ids(rng: random.Random, n: int) -> list[str]:
    """YouTube-like 11-character ids (some starting with '-' or '_') and a numeric one, as in MOSEI."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    ids = ["-" + "".join(rng.choices(alphabet, k=10)), "_" + "".join(rng.choices(alphabet, k=10)), str(rng.randint(10**5, 10**6 - 1))]
    while len(ids) < n:
        ids.append("".join(rng.choices(alphabet[:62], k=11)))
    return ids[:n]


def _script(rng: random.Random, n_videos: int, clips_per_video: int) -> dict[str, list[tuple[str, str | None, str, bool]]]:
    """Per video: (emotion, secondary, sentence, labelled) for each clip, emotions balanced."""
    moods = list(EMOTIONS) + ["neutral"]
    plan = {}
    k = 0
    for vid in _video_ids(rng, n_videos):
        items = []
        for c in range(clips_per_video):
            emotion = moods[k % len(moods)]
            k += 1
            secondary = SECONDARY.get(emotion) if rng.random() < 0.3 else None
            text = rng.choice(SENTENCES[emotion])
            labelled = not (c == clips_per_video - 1 and len(plan) % 4 == 3)  # a few unlabelled clips, as in MOSEI
            items.append((emotion, secondary, text, labelled))
        plan[vid] = items
    return plan


def _write_video(path: Path, audio: np.ndarray, segments: list[tuple[float, float, str]]) -> None:
    """H.264 + AAC mp4 whose frames show the emotion of the clip being spoken at that time."""
    from scipy.signal import resample_poly

    n_frames = int(np.ceil(len(audio) / AUDIO_RATE * FPS))
    hop = AUDIO_RATE // FPS
    env = np.sqrt(np.convolve(audio**2, np.ones(hop) / hop, mode="same"))
    env = env / (env.max() + 1e-9)

    def frames():  # noqa: ANN202 - a generator of RGB frames
        for i in range(n_frames):
            t = i / FPS
            mood = next((e for s, e_, e in segments if s <= t < e_), "neutral")
            yield render_frame(mood, float(env[min(len(env) - 1, int(t * AUDIO_RATE))]), t)

    stereo = np.repeat(resample_poly(audio, 441, 160).astype(np.float32)[None, :], 2, axis=0)
    write_video(path, frames(), FPS, stereo, 44100, video_options={"preset": "veryfast", "crf": "23", "g": str(FPS)})


def build_demo(root: Path, n_videos: int = 12, clips_per_video: int = 4, seed: int = 7) -> list[Clip]:
    """Write the demo tree under ``root`` (created atomically) and return its clips."""
    from scipy.signal import resample_poly

    rng = random.Random(seed)
    speaker = Speaker()
    tmp = Path(tempfile.mkdtemp(prefix=".demo-building-", dir=root.parent))
    try:
        layout = MoseiLayout(tmp)
        for d in (layout.video_dir, layout.audio_dir, layout.transcript_dir, layout.label_dir):
            d.mkdir(parents=True)
        clips: list[Clip] = []
        for v, (vid, items) in enumerate(_script(rng, n_videos, clips_per_video).items()):
            pieces = [np.zeros(int(0.4 * AUDIO_RATE), dtype=np.float32)]
            t = 0.4
            segments = []
            for c, (emotion, secondary, text, labelled) in enumerate(items):
                pcm = speaker.say(text, VOICES[emotion])
                speech = resample_poly(pcm.astype(np.float32) / 32768.0, 320, 441).astype(np.float32)
                start, end = t, t + len(speech) / AUDIO_RATE
                # MOSEI's own times are loose and sometimes negative; mimic both.
                t_start = -0.05 if (v == 1 and c == 0) else round(start - 0.1, 3)
                clips.append(Clip(vid, c, emotion, secondary, text, t_start, round(end + 0.1, 3), labelled))
                segments.append((start, end, emotion))
                pieces += [speech, np.zeros(int(0.5 * AUDIO_RATE), dtype=np.float32)]
                t = end + 0.5
            audio = np.concatenate(pieces)
            write_wav(layout.audio(vid), audio, AUDIO_RATE)
            _write_video(layout.video(vid), audio, segments)
            lines = [
                MoseiLayout.transcript_line(c.video_id, c.clip_id, f"{c.start_s}", f"{c.end_s}", c.text)
                for c in clips
                if c.video_id == vid
            ]
            layout.transcript(vid).write_text("\n".join(lines) + "\n", encoding="utf-8")
        _write_labels(layout.label_dir / "demo_batch_results.csv", clips, rng)
        videos = sorted({c.video_id for c in clips}, key=[c.video_id for c in clips].index)
        n_held = max(1, n_videos // 6)  # video-disjoint, like MOSEI's folds: 8/2/2 of 12 videos (40/10/10 of 60)
        splits = {
            "train": videos[: n_videos - 2 * n_held],
            "valid": videos[n_videos - 2 * n_held : n_videos - n_held],
            "test": videos[n_videos - n_held :],
        }
        (tmp / "splits.json").write_text(json.dumps(splits, indent=1))
        about = {"version": DEMO_VERSION, "seed": seed, "videos": n_videos, "clips": len(clips)}
        (tmp / "DEMO.json").write_text(json.dumps(about))
        try:
            os.rename(tmp, root)
        except OSError:  # built concurrently by another process: use theirs
            pass
        return clips
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_labels(path: Path, clips: list[Clip], rng: random.Random) -> None:
    """Mechanical Turk batch CSV: one row per annotator, three annotators per labelled clip."""
    valence = {"happiness": 2, "surprise": 1, "neutral": 0, "fear": -1, "disgust": -2, "sadness": -2, "anger": -2}
    header = ["HITId", "WorkerId", "Input.VIDEO_ID", "Input.CLIP"] + [f"Answer.{e}" for e in EMOTIONS] + ["Answer.sentiment"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for c in clips:
            if not c.labelled:
                continue
            for a in range(3):
                scores = {e: 0 for e in EMOTIONS}
                if c.emotion in scores:
                    scores[c.emotion] = rng.randint(1, 3)
                if c.secondary and a < 2:
                    scores[c.secondary] = rng.randint(1, 2)
                sentiment = max(-3, min(3, valence[c.emotion] + rng.choice((-1, 0, 0, 1))))
                w.writerow([f"H{c.video_id}{c.clip_id}", f"W{a}", c.video_id, c.clip_id, *scores.values(), sentiment])
