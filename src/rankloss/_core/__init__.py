"""The leaf layer every other part of rankloss builds on; it imports nothing else of rankloss.

* :mod:`~rankloss._core.validation`: the tensor contract, checked once (:class:`ListBatch`).
* :mod:`~rankloss._core.params`: hyper-parameter checks with one message form.
* :mod:`~rankloss._core.reduce`: the one reduction (one value per list or anchor, then mean).
* :mod:`~rankloss._core.ranking`: gains, discounts, ranks, ideal DCG, pair masks.
* :mod:`~rankloss._core.similarity`: similarity matrices (higher means closer).
* :mod:`~rankloss._core.candidates`: embedding-loss inputs as queries against candidates.
* :mod:`~rankloss._core.tuples`: typed pairs and triplets.
* :mod:`~rankloss._core.registry`: name -> component.
* :mod:`~rankloss._core.autograd`: backward passes that refuse a second derivative.

Layers (checked by ``tests/test_layers.py``): ``_core`` -> ``functional`` -> ``losses``,
``mining``, ``metrics``, ``augment`` -> ``data``, ``models``, ``train`` -> ``bench``, ``cli``.
"""
