"""The Textual terminal UI. It only calls the core's public functions."""
