"""Analysis windows shared by the acoustic extractors (DisVoice 142 and openSMILE LLD means).

One rule for every per-window column, so that ``acoustic``, ``egemaps_lld`` and ``compare_lld`` of a
row have the same length and window ``k`` means the same stretch of audio in all of them:

* window ``k`` starts at ``k * hop_s`` seconds from the start of the utterance and lasts ``window_s``;
* windows are emitted until one reaches the end of the utterance; that last one may be shorter
  (it holds the remaining samples; it is never zero-padded);
* a last window shorter than :data:`MIN_WINDOW_S` is dropped (too few frames for the 10 ms phonet
  posteriors and 20 ms pitch track to mean anything) unless it is the only window: an utterance
  shorter than that gets exactly one window holding all of its samples.
"""

from __future__ import annotations

MIN_WINDOW_S = 0.1
"""A trailing window shorter than this is dropped (unless it is the utterance's only window)."""


def window_bounds(n_samples: int, sample_rate: int, window_s: float, hop_s: float) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` sample ranges of the analysis windows of an ``n_samples`` long signal."""
    if window_s <= 0 or hop_s <= 0:
        raise ValueError(f"window_s and hop_s must be positive, got {window_s}, {hop_s}")
    win = max(1, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    min_len = round(MIN_WINDOW_S * sample_rate)
    bounds: list[tuple[int, int]] = []
    lo = 0
    while lo < n_samples:
        hi = min(lo + win, n_samples)
        if bounds and (hi - lo < min_len or hi <= bounds[-1][1]):
            break
        bounds.append((lo, hi))
        if hi >= n_samples:
            break
        lo += hop
    if not bounds and n_samples > 0:
        bounds.append((0, min(win, n_samples)))
    return bounds
