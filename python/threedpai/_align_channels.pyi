import numpy as np
import numpy.typing as npt

STATS: tuple[str, ...]

def range_stats(
    columns: list[npt.NDArray[np.floating]],
    probe: npt.NDArray[np.floating],
    t: npt.NDArray[np.floating],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    stats: tuple[str, ...],
    out: npt.NDArray[np.float64] | None = None,
    count: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
def interpolate(
    columns: list[npt.NDArray[np.floating]],
    probe: npt.NDArray[np.floating],
    src: npt.NDArray[np.floating],
    dst: npt.NDArray[np.floating],
    linear: bool,
) -> npt.NDArray[np.floating]: ...
