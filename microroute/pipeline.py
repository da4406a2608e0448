"""The pipeline: one request's way through the app, from the server and back.

::

    server -> Pipeline.__call__ -> health probes? (answered, nothing else runs)
           -> ProxyFix (trust_proxy) -> limits (early 413/400)
           -> cache HIT? (no middleware: one dict lookup, nothing else runs)
           -> the request's own context -> observers: request_started
           -> middleware -> Dispatcher (route matched) -> cache -> handler -> reply
           -> Set-Cookie -> on the wire -> primed body -> observers: response_started
           -> server -> body's close(): after() work, observers: response_ended

Each stage is a module of its own (:mod:`~microroute.scope`,
:mod:`~microroute.middleware`, :mod:`~microroute.dispatch`,
:mod:`~microroute.cache`, :mod:`~microroute.running`,
:mod:`~microroute.replies`, :mod:`~microroute.lifecycle`); this one runs them
in order. "On the wire" is the last word on every reply, whoever made it: a
header no server may send becomes a logged 500 naming it, and a HEAD, 204 or
304 loses its body, so what the TestClient sees is what gunicorn and
``microroute run`` send.
"""

from __future__ import annotations

import contextvars
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from .after_response import after_the_response, pending
from .cache import Entry
from .context import RequestState, active, bind
from .disconnect import DISCONNECT, Disconnect
from .dispatch import Dispatcher
from .errorpages import HANDLER_ERRORS, ErrorPages
from .errors import HTTPError
from .health import Health
from .lifecycle import Exchange, ObservedBody, Observers
from .middleware import CallNext, reply_to_response, response_to_reply
from .replies import prime
from .requests import Request
from .responses import Headers, Reply, SafeHeaders, StreamBody, close_body, error_reply
from .scope import check_length, with_cookies
from .settings import Settings
from .table import RouteTable
from .wire import headers_problem, without_body

__all__ = ["Pipeline"]

logger = logging.getLogger("microroute")

StartResponse = Callable[..., Any]
WSGIEnviron = dict[str, Any]

# The early 413/400 from Content-Length, handed to the innermost call_next.
_EARLY_ERROR = "microroute.early_error"


class Pipeline:
    """A request's way through the stages: the WSGI entry of :class:`~microroute.App`.

    ``App`` derives from it and wires the stages in its ``__init__``, so a
    request reaches :meth:`__call__` with no call in between (a cache HIT is
    a dict lookup and nothing more).
    """

    __slots__ = (
        "_call_next",
        "_dispatcher",
        "_errors",
        "_fast",
        "_health",
        "_max_body_size",
        "_observing",
        "_proxy_fix",
        "_table",
        "settings",
    )

    def __init__(
        self,
        settings: Settings,
        table: RouteTable,
        dispatcher: Dispatcher,
        errors: ErrorPages,
        proxy_fix: Callable[[WSGIEnviron, Any], WSGIEnviron] | None,
    ) -> None:
        self.settings = settings
        self._max_body_size = settings.max_body_size
        self._table = table
        self._dispatcher = dispatcher
        self._errors = errors
        #: ProxyFix, rewriting the environ in place before anything reads it.
        self._proxy_fix = proxy_fix
        #: The middleware chain around :meth:`core`, or None without middleware.
        self._call_next: CallNext | None = None
        #: The memory store's entries, read directly for a HIT when nothing
        #: else must run around it (no middleware, no observer).
        self._fast: OrderedDict[str, Entry] | None = None
        #: What watches each request (:mod:`microroute.lifecycle`), or None.
        self._observing: Observers | None = None
        #: ``/healthz`` and ``/readyz``, answered before anything else (``App(health=True)``).
        self._health: Health | None = None

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        health = self._health
        if health is not None and health.answers(environ):
            return health(environ, start_response)  # no middleware, cache, observer or log
        if self._proxy_fix is not None:
            environ = self._proxy_fix(environ, None)
        early: HTTPError | None = None
        length = environ.get("CONTENT_LENGTH")
        if length:
            early = check_length(length, self._max_body_size)
            if (
                early is not None
                and self._call_next is None
                and not self._errors.handlers
                and (
                    self._observing is None
                    or not (self._observing.always or self._observing.active())
                )
            ):
                # Nothing could change it: answer without building a request.
                reply = error_reply(early.status, early.message)
                start_response(reply[0], reply[1])
                return reply[2] if environ["REQUEST_METHOD"] != "HEAD" else []
        fast = self._fast if early is None else None
        if fast is not None:
            # A cache HIT without routing, context or a handler: one dict lookup.
            # Static entries are keyed by path alone: a build never sees the query.
            key = environ.get("PATH_INFO", "")
            entry = fast.get(key)
            if entry is not None and entry.servable(environ):
                try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup
                    fast.move_to_end(key)  # keep the LRU order true
                except KeyError:  # evicted meanwhile by another thread
                    pass
                observing = self._observing
                if observing is not None and (observing.always or observing.active()):
                    return self._observed_hit(environ, start_response, entry)
                start_response(entry.status, entry.hit)
                return [entry.body]
        watch: Disconnect | None = None
        if DISCONNECT not in environ:
            # gunicorn's own gevent worker does not watch its clients: we do.
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                watch = environ[DISCONNECT] = Disconnect(sock)
        # Each request runs in a copy of the server's context: a ContextVar
        # that user code sets here is gone for the next request on the same
        # keep-alive connection (the same greenlet). Stream chunks run in it too.
        context = contextvars.copy_context()
        observing = self._observing
        exchange: Exchange | None = None
        try:
            if observing is None or not (observing.always or observing.active()):
                status, headers, body = context.run(self._respond, environ, early, None)
            else:
                exchange = Exchange(environ, observing)
                exchange.context = context
                status, headers, body = context.run(self._observed, environ, early, exchange)
        except BaseException:
            # The client left while the response was primed (ClientGone), or the
            # worker is going down: there is no body to carry the request's
            # after() work, so it is handed on here, and the exchange ends.
            if pending in context:
                after_the_response((), context, environ, exchange).close()
            if exchange is not None:
                context.run(exchange.end)
            raise
        if type(body) is StreamBody:
            body.context = context  # the generator runs later, with cookies() etc. still usable
            # Its generator may still call after(): close() looks then.
            body = after_the_response(body, context, environ, exchange)
        elif pending in context:  # after() was called: its work runs at close()
            body = after_the_response(body, context, environ, exchange)
        if exchange is not None and exchange.watch_end:
            body = ObservedBody(body, exchange)
        start_response(status, headers)
        if watch is not None:
            return watch.until_closed(body)
        return body

    def _observed_hit(
        self, environ: WSGIEnviron, start_response: StartResponse, entry: Entry
    ) -> Iterable[bytes]:
        """A cache HIT on the fast path, told to the observers as any request is."""
        observing = self._observing
        assert observing is not None
        context = contextvars.copy_context()
        exchange = Exchange(environ, observing)
        exchange.context = context
        headers = context.run(_hit_moments, exchange, entry)
        start_response(entry.status, headers)
        if exchange.watch_end:
            return ObservedBody([entry.body], exchange)
        return [entry.body]

    def _observed(self, environ: WSGIEnviron, early: HTTPError | None, exchange: Exchange) -> Reply:
        """:meth:`_respond` between the observers' first and third moments, in context.

        (:meth:`Exchange.start` and :meth:`Exchange.respond`, inlined: request
        ids make this every request's path.)
        """
        observers = exchange.observers
        for hook in observers.started:
            hook(exchange)
        status, headers, body = self._respond(environ, early, exchange)
        exchange.streaming = type(body) is StreamBody
        exchange.status = status
        if observers.responding:
            headers = list(headers)
            for responding in observers.responding:
                responding(exchange, headers)
        exchange.headers = headers
        return status, headers, body

    def _respond(
        self, environ: WSGIEnviron, early: HTTPError | None, exchange: Exchange | None
    ) -> Reply:
        """The request inside its own context: middleware, routing, handler, cookies."""
        state = RequestState(self.settings, self._table, environ)
        if exchange is not None:
            state.exchange = exchange
        bind(state)  # no unbind: the context is dropped with the request
        if early is not None:
            environ[_EARLY_ERROR] = early
        if self._call_next is None:
            if early is not None:
                status, headers, body = self._errors.render(early, environ, "Content-Length")
            else:
                status, headers, body = self._dispatcher.dispatch(environ, state)
        else:
            status, headers, body = response_to_reply(self._call_next(state.request), environ)
        if state.touched:  # cookies() or session() was used
            status, headers, body = with_cookies(state, (status, headers, body), self._errors)
        state.sent = True
        # In the context still: a stream closed here runs its finally: in it.
        status, headers, body = on_the_wire(environ, status, headers, body)
        if type(body) is StreamBody or isinstance(body, (list, tuple)):
            return status, headers, body
        if _is_file_wrapper(body, environ):  # sendfile: the server's own, untouched
            return status, headers, body
        try:
            return prime(environ, status, headers, body)
        except HANDLER_ERRORS as exc:
            where = f"the response to {environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}"
            return on_the_wire(environ, *self._errors.render(exc, environ, where))

    def _core(self, request: Request) -> Any:
        """The innermost ``call_next``: routing and the handler, for *request*.

        A middleware may pass a request of its own (a rewritten path, an added
        header): the handler, ``headers()``, ``cookies()`` and the cache key
        then all see that one.
        """
        state = active()
        state.use_request(request)
        early = request.environ.get(_EARLY_ERROR)
        if early is not None:  # the 413/400 decided from Content-Length alone
            return reply_to_response(self._errors.render(early, request.environ, "Content-Length"))
        return reply_to_response(self._dispatcher.dispatch(request.environ, state))


def on_the_wire(
    environ: WSGIEnviron, status: str, headers: Headers, body: Iterable[bytes]
) -> Reply:
    """The last word before the server: headers it can send, no body where none is allowed.

    Whatever made the reply (a handler, an error handler, middleware, the
    cache), a header a server cannot send becomes a logged 500 naming it,
    not a server's HTML 500 or an injected header; a HEAD, 204 or 304 never
    carries a body, so a keep-alive connection stays in sync.
    """
    problem = None if type(headers) is SafeHeaders else headers_problem(headers)
    if problem is not None:
        close_body(body)
        logger.error(
            "Refused to send the response to %s %s: %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            problem,
        )
        status, headers, body = error_reply(500, "Internal Server Error")
    code = status[:3]
    if code == "204" or code == "304" or environ["REQUEST_METHOD"] == "HEAD":
        if code == "204":  # RFC 9110 §8.6: no Content-Length on a 204
            headers = [h for h in headers if h[0].lower() not in ("content-length", "content-type")]
        elif code == "304":  # allowed by RFC 9110, but gevent's pywsgi answers 500 to it
            headers = [h for h in headers if h[0].lower() != "content-length"]
        body = without_body(headers, body, int(code))
    return status, headers, body


def _is_file_wrapper(body: object, environ: WSGIEnviron) -> bool:
    """A server's ``wsgi.file_wrapper`` (sendfile): handed back untouched."""
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(body, wrapper)


def _hit_moments(exchange: Exchange, entry: Entry) -> Headers:
    """A HIT's first three moments; the route is the entry's."""
    exchange.start()
    if entry.endpoint is not None:
        exchange.routed(entry.endpoint.template)
    return exchange.respond(entry.status, entry.hit)
