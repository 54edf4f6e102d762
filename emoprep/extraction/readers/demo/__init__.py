"""The built-in demo corpus: synthetic talking-head videos laid out exactly like raw CMU-MOSEI.

Built offline on first use from parts that install with emoprep (espeak-ng from ``espeakng-loader``,
the public-domain astronaut photo from scikit-image), so ``emoprep extract --dataset demo`` exercises
the same reader, decoders and extractors as real data.  See :mod:`emoprep.extraction.readers.demo.corpus`.
"""
