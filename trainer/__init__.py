"""trainer: imports core first, so ONNX Runtime never starts with telemetry on."""

import core  # noqa: F401
