"""Code sources for the gate: the webcam and its QR decoders, a USB keyboard-wedge scanner, and
manual entry, each ending in a `ScannedCode` for the gate service.

Nothing here imports the UI: a screen runs `CameraPipeline` in a thread worker and posts a message
from `on_code`, and feeds its key events to `WedgeDetector`.
"""

from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import (
    Cascade,
    Decoder,
    DecoderStatus,
    DecoderUnavailable,
    Decoding,
    available_decoders,
    build_cascade,
)
from menwei.scanner.hints import HINTS, Hint, HintTracker
from menwei.scanner.manual import ManualEntryError, ManualQuery
from menwei.scanner.pipeline import (
    CameraPipeline,
    LineSource,
    ScannedCode,
    from_manual,
    from_wedge,
    submit,
)
from menwei.scanner.sources import (
    CameraSource,
    CameraStatus,
    CameraUnavailable,
    CodeSource,
    Frame,
    parse_source,
)
from menwei.scanner.wedge import WedgeDetector, WedgeScan

__all__ = [
    "HINTS",
    "CameraPipeline",
    "CameraSource",
    "CameraStatus",
    "CameraUnavailable",
    "Cascade",
    "CodeSource",
    "Debouncer",
    "Decoder",
    "DecoderStatus",
    "DecoderUnavailable",
    "Decoding",
    "Frame",
    "Hint",
    "HintTracker",
    "LineSource",
    "ManualEntryError",
    "ManualQuery",
    "ScannedCode",
    "WedgeDetector",
    "WedgeScan",
    "available_decoders",
    "build_cascade",
    "from_manual",
    "from_wedge",
    "parse_source",
    "submit",
]
