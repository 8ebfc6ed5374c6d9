"""rsearch: distributed search over ResNet training recipes and scaling strategies on Ray."""

from importlib import metadata

try:
    __version__ = metadata.version("rsearch")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
