"""threedpai: the data and AI toolkit for 3D printing."""

from threedpai._native import __version__
from threedpai.errors import GcodeParseError, ThreedpaiError

__all__ = ["GcodeParseError", "ThreedpaiError", "__version__"]
