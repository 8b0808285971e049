"""Adapters that let other training libraries use rankloss losses and metrics.

* :mod:`rankloss.integrations.sentence_transformers`: :class:`RanklossLoss` (alias
  ``Adapter``) wraps any rankloss embedding loss as a sentence-transformers loss, and
  :class:`CrossEncoderListLoss` wraps any rankloss list loss for a ``CrossEncoder`` (needs the
  ``text`` extra: ``pip install 'rankloss[text]'``).
* :mod:`rankloss.integrations.lightning`: :class:`RankingModule`, a ``LightningModule`` that
  trains with a rankloss loss and logs rankloss metrics (needs the ``lightning`` extra:
  ``pip install 'rankloss[lightning]'``).

Each submodule imports its third-party library when it is imported itself, so importing
:mod:`rankloss.integrations` needs neither. See ``docs/integrations.md``.
"""

__all__: list[str] = []
