"""Play-session recording: the crash-safe file format, the writer, and reading back."""
