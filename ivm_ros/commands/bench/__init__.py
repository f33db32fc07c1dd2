"""``ivm-ros bench NAME``: one module per benchmark, with their shared helpers in :mod:`.common`."""
