"""pingpong: an asyncio TCP ping-pong system that simulates an unstable network.

Standard library only. The protocol and log formats are pure (``protocol``,
``logformat``); ``server``, ``client`` and ``runner`` are thin asyncio shells over
them; ``check`` verifies a run's logs against every rule of docs/protocol.md.
"""

__version__ = "0.1.0"
