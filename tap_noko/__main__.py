"""``python -m tap_noko``."""

from tap_noko.tap import TapNoko

TapNoko.cli()
