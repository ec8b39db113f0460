"""`python -m config.serve [daphne's arguments]`: the web process, daphne on uvloop.

Daphne runs Twisted on an asyncio event loop that it creates when `daphne.server` is first
imported, so the loop policy is set here, before that import. uvloop's loop costs a fraction of
the standard one per socket event, and the web process spends much of its time there (every
token read from a model server and written to the page's websocket): under `bench.chat`'s load
of two web processes on two cores, the p95 latency added to each token drops from over 100 ms
to about 30 ms. Where uvloop is missing (Windows) the standard loop is used.

Daphne refuses a websocket message over 1 MiB and a text frame that is not UTF-8, but autobahn
then cuts the TCP connection by default (`failByDrop`): the page sees 1006 and no reason. Here
it sends the close frame first (1009 message too big, 1007 invalid UTF-8). Must not import
Django or `chatui`.
"""

from __future__ import annotations

import asyncio
import sys


def use_uvloop() -> bool:
    """Makes uvloop the loop that asyncio creates from now on; False when it is missing."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def close_websockets_with_a_code() -> None:
    """Daphne's websocket factory, with autobahn's `failByDrop` off (see the module docstring).
    Imports daphne.server: call after `use_uvloop`."""
    import daphne.server
    from daphne.ws_protocol import WebSocketFactory

    class ClosingWebSocketFactory(WebSocketFactory):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.setProtocolOptions(failByDrop=False)

    daphne.server.WebSocketFactory = ClosingWebSocketFactory  # type: ignore[misc]


def main(argv: list[str] | None = None) -> None:
    use_uvloop()
    close_websockets_with_a_code()
    from daphne.cli import CommandLineInterface  # creates daphne's loop: after the policy

    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
