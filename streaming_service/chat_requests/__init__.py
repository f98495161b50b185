"""Durable chat requests: run a turn as a background task, fan its events out to any number of
readers, and log them (token deltas coalesced) so a reader on any process can replay from
``Last-Event-ID`` and follow until the end.

One module per concern, composed by ``ChatRequestManager`` (``manager``), which owns their
lifetimes and hands each a ``ChatRequestDeps`` (``deps``):

- ``live``: the requests running here and their in-memory fan-out to readers;
- ``runner``: starting a request and running the chat engine's turn to its end;
- ``event_log``: the write-behind of every live request's events to the database;
- ``readers``: following, status and cancel, from memory here or from the log elsewhere;
- ``log_listener``: one ``LISTEN`` per process that wakes the readers following the log;
- ``cleanup``: heartbeats, orphaned requests (their process died) and expiry.

How a reply ends, and what status a terminal event means, is the domain's
(``ytresearch.services.endings``).
"""

from streaming_service.chat_requests.live import LiveRequest
from streaming_service.chat_requests.manager import ChatRequestManager
from streaming_service.chat_requests.readers import RECONNECT_MS

__all__ = ["RECONNECT_MS", "ChatRequestManager", "LiveRequest"]
