"""The PySide6 desktop app on top of `core` (no search logic, no torch)."""
