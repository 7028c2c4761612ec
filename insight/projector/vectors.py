"""`Vectors`: what every projector source returns (the vectors, their metadata, thumbnails).

Example:

>>> import numpy as np
>>> v = Vectors(np.zeros((3, 2), "float32"), name="toy")
>>> v.total, list(v.metadata.columns)
(3, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Vectors"]


@dataclass
class Vectors:
    """Vectors to project, with one metadata row per vector.

    Attributes:
        vectors: `(n, d)` float32.
        metadata: a frame with `n` rows (may have no columns).
        name: what the vectors are, for titles.
        images: `(n, H, W)` or `(n, H, W, C)` inputs for thumbnails, when they are images.
        total: how many points the full set has (more than `n` for a sample); 0: `n`.
    """

    vectors: np.ndarray
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""
    images: np.ndarray | None = None
    total: int = 0

    def __post_init__(self) -> None:
        self.total = self.total or len(self.vectors)
