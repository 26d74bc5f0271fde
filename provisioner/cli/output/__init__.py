"""How a run shows itself: plain lines, a live display on a terminal, or a JSON event stream.

Each is a ``Reporter`` (apply/events.py) and a context manager; all write through one
``Lines`` so that no two threads ever share a line.
"""
