"""The CML platform: nodes are CML Applications, environment jobs are CML Jobs."""
from cluster.platforms.cml.platform import CMLPlatform

__all__ = ["CMLPlatform"]
