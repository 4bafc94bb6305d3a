import numpy as np
import numpy.typing as npt

def asof_indices(
    left: npt.NDArray[np.floating],
    right: npt.NDArray[np.floating],
    direction: str = "backward",
    tolerance: float = ...,
    out: npt.NDArray[np.int64] | None = None,
    offset: int = 0,
) -> npt.NDArray[np.int64]: ...
def interval_bounds(
    t: npt.NDArray[np.floating], starts: npt.NDArray[np.floating], ends: npt.NDArray[np.floating]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def sort_dedup_index(
    t: npt.NDArray[np.floating], keep_last: bool = True, max_unsorted: float = 0.25
) -> tuple[npt.NDArray[np.int64] | None, int, int, int]: ...
