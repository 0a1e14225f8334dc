"""The search runtime: dictionaries, the normaliser, ONNX Runtime embedding, indexes, search.

Privacy: this is hospital software that promises no network and no telemetry. ONNX Runtime
ships with telemetry on (a device id and queued events under ~/.cache/Microsoft, and an
uploader); it reads `ORT_DISABLE_TELEMETRY` when it starts, so the switch is set here, before
any module of this project can import onnxruntime, and `core.bundle` also calls its API switch.
"""

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
