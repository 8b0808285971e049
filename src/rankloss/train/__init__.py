"""Training: one :class:`Trainer` for every area, with ready-made tasks.

>>> from rankloss.train import Trainer, LTRTask, EarlyStopping  # doctest: +SKIP
>>> Trainer(model, LTRTask(data), "listnet", epochs=20,
...         early_stopping=EarlyStopping("ndcg@10", "max", patience=3)).fit()  # doctest: +SKIP

Tasks call a loss in the form its ``kind`` names (``"list"`` or ``"embedding"``); a loss of a
kind the task cannot use is a ``TypeError`` when the trainer is built.
"""

from rankloss.train.tasks import (
    EmbeddingTask,
    LTRTask,
    RecsysTask,
    TextRetrievalTask,
    check_loss_kind,
    loss_kind,
)
from rankloss.train.trainer import (
    EarlyStopping,
    Task,
    Trainer,
    TrainResult,
    UnsafeCheckpointError,
    build_loss,
    move_to_device,
    seed_everything,
)

__all__ = [
    "Trainer",
    "Task",
    "EarlyStopping",
    "TrainResult",
    "UnsafeCheckpointError",
    "seed_everything",
    "build_loss",
    "move_to_device",
    "LTRTask",
    "EmbeddingTask",
    "RecsysTask",
    "TextRetrievalTask",
    "loss_kind",
    "check_loss_kind",
]
