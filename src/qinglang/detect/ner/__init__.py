"""Statistical recogniser of person names, addresses and schools (Chinese).

A character-level linear-chain CRF with n-gram and lexicon features, trained by
``bench/train_ner.py`` and shipped as numpy arrays in ``data/``; inference is pure numpy.
See ``docs/model_card_ner.md`` for the data, licences and figures.
"""

from qinglang.detect.ner.model import CATEGORIES, CrfModel, NerRecognizer, load_model

__all__ = ["CATEGORIES", "CrfModel", "NerRecognizer", "load_model"]
