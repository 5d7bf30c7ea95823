"""The Textual dashboard: renders the board and forwards user intent.

All logic lives in the core (`monitor.config`, `monitor.engine`); nothing
in the core imports this package.
"""
