r"""rankloss losses for sentence-transformers (the ``text`` extra).

Two adapters, each an ``nn.Module`` with the loss interface the sentence-transformers trainers
call, so ``SentenceTransformerTrainer``, ``CrossEncoderTrainer`` and ``model.fit`` take them like
any of their own losses:

* :class:`RanklossLoss` (alias :data:`Adapter`) embeds every text column with a
  ``SentenceTransformer`` and calls a rankloss **embedding** loss:

  =======================================================  ====================================
  dataset columns (and label)                              rankloss call
  =======================================================  ====================================
  ``(text,)`` + integer ``label``                          ``loss(embeddings, labels)``
  ``(anchor, positive)``                                   ``loss(anchor, keys=positive)``
  ``(anchor, positive, negative_1, ..., negative_h)``      ``loss(anchor, keys=positive,
                                                           hard_negatives=[N, h, d])``
  =======================================================  ====================================

  With two or more columns a ``label`` column is ignored (as in sentence-transformers'
  ``MultipleNegativesRankingLoss``) unless ``use_labels=True``, which passes it as the class
  labels of the ``(queries, keys)`` form.
* :class:`CrossEncoderListLoss` scores every (query, document) pair of
  ``(query, [doc_1, ..., doc_n])`` rows with a ``CrossEncoder`` (one output), pads the lists
  into ``[B, n]`` with a ``mask`` and calls a rankloss **list** loss (``lambdaloss``,
  ``listnet``, ...) on them with the ``[B, n]`` padded labels.

With ``InfoNCELoss(similarity="cosine", temperature=1 / scale)`` the first adapter equals
sentence-transformers' ``MultipleNegativesRankingLoss(model, scale=scale)`` (default scale 20,
so temperature 0.05), with or without hard-negative columns: both are the mean over anchors of
the cross-entropy of the anchor's positive against every positive and hard negative of the
batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

try:
    import sentence_transformers  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "rankloss.integrations.sentence_transformers needs the 'text' extra: "
        "pip install 'rankloss[text]'"
    ) from err

from rankloss import losses

__all__ = ["RanklossLoss", "Adapter", "CrossEncoderListLoss"]


def _resolve_loss(loss: nn.Module | str, kind: str, where: str) -> nn.Module:
    """A loss module of ``kind`` (a registered name is built with its defaults)."""
    if isinstance(loss, str):
        loss = losses.get(loss)
    if not isinstance(loss, nn.Module) or getattr(loss, "kind", None) != kind:
        got = getattr(loss, "kind", None)
        described = f"a {got} loss" if got else type(loss).__name__
        raise TypeError(
            f"{where}: loss must be a rankloss {kind} loss (rankloss.losses.available("
            f"kind={kind!r})), got {described}"
        )
    return loss


class RanklossLoss(nn.Module):
    r"""A rankloss embedding loss as a sentence-transformers loss.

    Each text column :math:`c` is embedded, :math:`E_c = f_\theta(\text{column}_c) \in
    \mathbb{R}^{N \times d}`, and the rankloss loss is called on them:

    .. math::
        \ell = \begin{cases}
        L(E_1, \text{labels}) & \text{one column} \\
        L(E_1, \text{keys}=E_2, \text{hard\_negatives}=[E_3, \dots, E_{2+h}]) & \text{two or more}
        \end{cases}

    For example ``RanklossLoss(model, InfoNCELoss(temperature=0.05))`` is sentence-transformers'
    ``MultipleNegativesRankingLoss(model)`` (scale 20): InfoNCE of van den Oord, Li and Vinyals
    (2018) with in-batch negatives (Henderson et al. 2017).

    Args:
        model: a ``SentenceTransformer`` (called on each column's features; its
            ``"sentence_embedding"`` output is used).
        loss: a rankloss embedding loss module (``rankloss.losses.InfoNCELoss(...)``, a
            ``CombinedLoss`` of embedding losses) or a registered name (built with defaults).
        use_labels: with two or more columns, pass the ``label`` column as the integer class
            labels of the ``(queries, keys)`` form (same-class keys are then not negatives);
            ``False`` (default) ignores it, as sentence-transformers' ranking losses do.

    Forward:
        sentence_features: one feature dict per column (what the trainer collates).
        labels: ``[N]`` integer class labels (needed with one column) or ``None``.

    Returns:
        The loss (a scalar, or ``[N]`` with a ``reduction="none"`` loss).

    Cost: one forward of the model per column (or one merged forward, when the installed
    sentence-transformers offers it) plus the rankloss loss (``O(N (N + N h) d)`` for InfoNCE).

    Raises:
        TypeError: ``loss`` is not an embedding loss (when the module is built).
        ValueError: one column without labels, or no column.
    """

    def __init__(
        self, model: nn.Module, loss: nn.Module | str, *, use_labels: bool = False
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.model = model
        self.loss = _resolve_loss(loss, "embedding", where)
        if not isinstance(use_labels, bool):
            raise TypeError(f"{where}: use_labels must be a bool, got {type(use_labels).__name__}")
        self.use_labels = use_labels

    def embed(self, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
        """The ``[N, d]`` embeddings of each column."""
        features = list(sentence_features)
        try:  # one merged forward for all columns (sentence-transformers >= 6)
            from sentence_transformers.base.losses.merged_forward import embed_columns
        except ImportError:
            return [self.model(f)["sentence_embedding"] for f in features]
        return list(embed_columns(self.model, features))

    def forward(
        self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None
    ) -> Tensor:
        return self.compute_loss_from_embeddings(self.embed(sentence_features), labels)

    def compute_loss_from_embeddings(
        self, embeddings: Sequence[Tensor], labels: Tensor | None = None
    ) -> Tensor:
        """The loss of already computed column embeddings (``[N, d]`` each, see the class)."""
        where = type(self).__name__
        if len(embeddings) == 0:
            raise ValueError(f"{where}: got no input column")
        if len(embeddings) == 1:
            if labels is None:
                raise ValueError(
                    f"{where}: one text column needs an integer 'label' column (the "
                    "(embeddings, labels) form); for (anchor, positive) data give both columns"
                )
            return self.loss(embeddings[0], labels.to(embeddings[0].device))
        queries, keys = embeddings[0], embeddings[1]
        hard_negatives = torch.stack(list(embeddings[2:]), dim=1) if len(embeddings) > 2 else None
        kwargs: dict[str, Any] = {"keys": keys}
        if hard_negatives is not None:
            kwargs["hard_negatives"] = hard_negatives
        if self.use_labels and labels is not None:
            kwargs["labels"] = labels.to(queries.device)
        return self.loss(queries, **kwargs)

    def get_config_dict(self) -> dict[str, Any]:
        """What sentence-transformers writes in the model card."""
        return {"loss": repr(self.loss), "use_labels": self.use_labels}


#: Short name of :class:`RanklossLoss`.
Adapter = RanklossLoss


class CrossEncoderListLoss(nn.Module):
    r"""A rankloss list loss for a sentence-transformers ``CrossEncoder``.

    Each row ``(query, [doc_1, ..., doc_{n_b}])`` with labels ``[y_1, ..., y_{n_b}]`` is scored
    pair by pair, :math:`s_{bi} = g_\theta(q_b, d_{bi})`; the lists are padded to
    :math:`n = \max_b n_b` with ``mask[b, i] = i < n_b`` and the rankloss list loss is called:

    .. math::
        \ell = L(S, Y, \text{mask}), \qquad S, Y \in \mathbb{R}^{B \times n}

    so any list loss works: LambdaLoss (Wang et al., CIKM 2018), ListNet (Cao et al., ICML
    2007), RankNet (Burges et al., ICML 2005), ... Padded positions never reach the loss (the
    mask says so), so the value does not depend on the padding width.

    Args:
        model: a ``CrossEncoder`` with one output (``num_labels=1``).
        loss: a rankloss list loss module or a registered name (``"lambdaloss"``).
        mini_batch_size: (query, document) pairs per model forward; ``None``: all at once.

    Forward (the ``CrossEncoderTrainer`` interface):
        inputs: ``[queries, docs]``: ``B`` query strings and ``B`` lists of documents.
        labels: ``B`` label lists (lists or 1-d tensors, one label per document), or a
            ``[B, n]`` tensor when every list has ``n`` documents.
        prompt, task: passed to the model's pre-processing when it takes them.

    Returns:
        The loss (a scalar, or ``[B]`` with a ``reduction="none"`` loss).

    Cost: one cross-encoder forward per pair (:math:`\sum_b n_b` pairs) plus the list loss
    (``O(B n^2)`` for pairwise losses).

    Raises:
        TypeError: ``loss`` is not a list loss (when the module is built).
        ValueError: a model with more than one output, inputs that are not (queries, docs),
            or label lists whose lengths differ from the document lists.
    """

    def __init__(
        self, model: nn.Module, loss: nn.Module | str, *, mini_batch_size: int | None = None
    ) -> None:
        super().__init__()
        where = type(self).__name__
        self.model = model
        self.loss = _resolve_loss(loss, "list", where)
        if mini_batch_size is not None and (
            not isinstance(mini_batch_size, int) or mini_batch_size <= 0
        ):
            raise ValueError(f"{where}: mini_batch_size must be > 0 or None, got {mini_batch_size}")
        self.mini_batch_size = mini_batch_size
        num_labels = getattr(model, "num_labels", 1)
        if num_labels != 1:
            raise ValueError(f"{where}: model must have 1 output (num_labels=1), got {num_labels}")

    def _device(self) -> torch.device:
        device = getattr(self.model, "device", None)
        if isinstance(device, torch.device):
            return device
        return next(self.model.parameters()).device

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """Scores ``[P]`` of (query, document) pairs, with gradients."""
        device = self._device()
        model: Any = self.model
        step = self.mini_batch_size or max(len(pairs), 1)
        parts = []
        for start in range(0, len(pairs), step):
            chunk = list(pairs[start : start + step])
            if hasattr(model, "preprocess"):  # sentence-transformers >= 6
                extra = {k: v for k, v in (("prompt", prompt), ("task", task)) if v is not None}
                tokens = model.preprocess(chunk, **extra)
                tokens = {
                    k: v.to(device) if isinstance(v, Tensor) else v for k, v in tokens.items()
                }
                parts.append(model(tokens)["scores"].reshape(-1))
            else:  # earlier versions: a Hugging Face model and tokenizer
                tokens = model.tokenizer(
                    [q for q, _ in chunk],
                    [d for _, d in chunk],
                    padding=True,
                    truncation=True,
                    max_length=getattr(model, "max_length", None),
                    return_tensors="pt",
                ).to(device)
                parts.append(model.model(**tokens).logits.reshape(-1))
        return torch.cat(parts)

    def forward(
        self,
        inputs: Sequence[Sequence[Any]],
        labels: Sequence[Any] | Tensor,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        where = type(self).__name__
        if len(inputs) != 2:
            raise ValueError(
                f"{where}: expected two input columns (queries, docs), got {len(inputs)}"
            )
        queries, docs = inputs
        lengths = [len(d) for d in docs]
        label_rows = [torch.as_tensor(y, dtype=torch.float32).reshape(-1) for y in labels]
        if len(label_rows) != len(lengths) or [len(y) for y in label_rows] != lengths:
            raise ValueError(
                f"{where}: documents per query {lengths} but labels per query "
                f"{[len(y) for y in label_rows]}"
            )
        pairs = [(str(q), str(d)) for q, ds in zip(queries, docs) for d in ds]
        flat = self.score_pairs(pairs, prompt, task).float()
        device = flat.device
        batch, width = len(lengths), max(lengths, default=0)
        rows = torch.repeat_interleave(
            torch.arange(batch, device=device), torch.tensor(lengths, device=device)
        )
        cols = torch.cat([torch.arange(n, device=device) for n in lengths]) if pairs else rows
        mask = torch.zeros(batch, width, dtype=torch.bool, device=device)
        mask[rows, cols] = True
        scores = flat.new_zeros(batch, width).index_put((rows, cols), flat)
        target = torch.zeros(batch, width, device=device)
        if pairs:
            target[rows, cols] = torch.cat(label_rows).to(device)
        return self.loss(scores, target, mask)

    def get_config_dict(self) -> dict[str, Any]:
        """What sentence-transformers writes in the model card."""
        return {"loss": repr(self.loss), "mini_batch_size": self.mini_batch_size}
