"""HTTP under the SDK's rules, for every hosted backend (the ``httpx`` clients of the Replicate provider and the
``httpx2`` clients inside ``openai``):

- **one deadline per call.** httpx's timeouts bound each socket operation, so a server that trickles a byte at a
  time keeps a call alive for ever. The call's end is set in a context variable (:func:`deadline`); the network
  backend under every client clamps each connect, read, write and TLS handshake to the time left, so a call ends
  within moments of its ``timeout``, whatever the server does.
- **answers read under a cap.** An API answer over the provider's cap is refused while it is read (a declared
  ``Content-Length`` over it before anything is read), never collected whole.
- **result URLs fetched from public addresses only** (:func:`fetch`): https, each redirect followed by hand and
  checked; the host name resolved once, every address checked (private, loopback, link-local, multicast, reserved and
  unspecified ones refused), and the connection made to the checked address, so DNS rebinding gains nothing.
  Loopback (over http too) only when the provider's base URL is loopback (the emulator); ``trusted_hosts`` lets
  private mirrors through.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urljoin, urlsplit

from ._errors import ProviderError, ProviderUnavailableError

_DEADLINE: ContextVar[float | None] = ContextVar("genai_sdk_deadline", default=None)
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


@contextlib.contextmanager
def deadline(end: float | None) -> Iterator[None]:
    """Every HTTP operation made inside this block ends by ``end`` (a ``time.monotonic()`` value; None: no end)."""
    token = _DEADLINE.set(end)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    end = _DEADLINE.get()
    return None if end is None else end - time.monotonic()


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one socket operation, no later than the call's deadline; past it, ``error`` at once."""
    left = time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise error("the call's timeout has passed")
    return left if timeout is None else min(timeout, left)


# -- which addresses may be fetched -------------------------------------------------------------------------------


if TYPE_CHECKING:  # ipaddress and socket are imported when first needed: `import genai_sdk` stays cheap
    import ipaddress

    Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressGuard:
    """Where result URLs may be fetched from."""

    loopback: bool = False  # the provider's base URL is loopback (the emulator): loopback hosts, over http too
    hosts: frozenset[str] = frozenset()  # trusted names (lower case; "*.example.com" for a domain's hosts)
    networks: tuple[Network, ...] = ()  # trusted address ranges

    @classmethod
    def for_base_url(cls, base_url: str | None, trusted: Iterable[str] = ()) -> AddressGuard:
        import ipaddress

        host = (urlsplit(base_url).hostname or "") if base_url else ""
        hosts, networks = set(), []
        for entry in trusted:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(_is_loopback_name(host), frozenset(hosts), tuple(networks))

    def trusts_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(h.startswith("*.") and host.endswith(h[1:]) for h in self.hosts)

    def problem(self, address: str) -> str | None:
        """Why an address may not be fetched from, or None."""
        ip = _ip(address)
        ip = getattr(ip, "ipv4_mapped", None) or ip  # an IPv4 address written as IPv6 is checked as itself
        if any(ip in network for network in self.networks):
            return None
        if ip.is_loopback:
            return None if self.loopback else "a loopback address"
        for test, what in (
            (ip.is_unspecified, "an unspecified address"),
            (ip.is_link_local, "a link-local address (cloud metadata services live there)"),
            (ip.is_multicast, "a multicast address"),
            (ip.is_private, "a private address"),
            (ip.is_reserved, "a reserved address"),
            (not ip.is_global, "an address that is not public"),
        ):
            if test:
                return what
        return None

    def check_url(self, url: str, provider: str) -> None:
        """The scheme and, for an address written in the URL, the address: before anything is sent."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except (ValueError, TypeError):
            raise _refused(str(url)[:200], "it is not a URL", provider) from None
        if parts.scheme not in ("https", "http") or not host:
            raise _refused(url, "it is not an http(s) URL", provider)
        literal = _literal(host)
        trusted = self.trusts_name(host) or (literal is not None and any(_ip(literal) in n for n in self.networks))
        if not trusted:
            problem = self.problem(literal) if literal is not None else None
            if problem is not None:
                raise _refused(url, f"{literal} is {problem}", provider)
            if literal is None and host.lower().rstrip(".") == "localhost" and not self.loopback:
                raise _refused(url, "localhost is a loopback address", provider)
        if parts.scheme == "http" and not trusted and not (self.loopback and _is_loopback_name(host)):
            raise _refused(url, "result files are fetched over https only", provider)

    def vet(self, host: str, port: int, provider: str) -> str:
        """The address to connect to for ``host``: resolved once, every address checked."""
        if self.trusts_name(host):
            return host
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            import socket

            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise ProviderUnavailableError(f"could not resolve {host}: {exc}", provider=provider, retryable=True) from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        return self._first_allowed(host, addresses, provider)

    def _first_allowed(self, host: str, addresses: list[str], provider: str) -> str:
        for address in addresses:
            problem = self.problem(address)
            if problem is not None:
                raise _refused(f"//{host}", f"{host} resolves to {address}, {problem}", provider)
        if not addresses:
            raise ProviderUnavailableError(f"{host} resolves to no address", provider=provider, retryable=True)
        return addresses[0]

    async def avet(self, host: str, port: int, provider: str) -> str:
        if self.trusts_name(host) or _literal(host) is not None:
            return self.vet(host, port, provider)
        import asyncio
        import socket

        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ProviderUnavailableError(f"could not resolve {host}: {exc}", provider=provider, retryable=True) from exc
        return self._first_allowed(host, list(dict.fromkeys(str(info[4][0]) for info in found)), provider)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    import ipaddress

    return ipaddress.ip_address(text.split("%", 1)[0])


def _literal(host: str) -> str | None:
    text = host.strip("[]")
    try:
        _ip(text)
    except ValueError:
        return None
    return text


def _is_loopback_name(host: str) -> bool:
    literal = _literal(host)
    return host.lower().rstrip(".") == "localhost" or (literal is not None and _ip(literal).is_loopback)


def _refused(url: str, why: str, provider: str) -> ProviderError:
    return ProviderError(
        f"refused to fetch the result {url}: {why}. Result files are fetched only from public addresses; "
        "for a private mirror, add its host to the trusted_hosts setting",
        provider=provider, retryable=False,
    )  # fmt: skip


# -- the network backends under httpx and httpx2 ------------------------------------------------------------------


class _Wrapper:
    """httpcore's network stream or backend (``inner``) under the call's deadline; ``core`` is httpcore's module, for
    its errors. A backend's ``guard`` says where it may connect."""

    def __init__(self, inner: Any, core: ModuleType, guard: AddressGuard | None = None, provider: str = "") -> None:
        self._inner, self._core, self._guard, self._provider = inner, core, guard, provider

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Stream(_Wrapper):
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return cast(bytes, self._inner.read(max_bytes, _clamp(timeout, self._core.ReadTimeout)))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, self._core.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> _Stream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, self._core.ConnectTimeout))
        return _Stream(inner, self._core)


class _Backend(_Wrapper):
    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> _Stream:
        timeout = _clamp(timeout, self._core.ConnectTimeout)
        address = host if self._guard is None else self._guard.vet(host, port, self._provider)
        return _Stream(self._inner.connect_tcp(address, port, timeout, local_address, socket_options), self._core)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> _Stream:
        if self._guard is not None:
            raise _refused(path, "a Unix socket is not a public address", self._provider)
        return _Stream(self._inner.connect_unix_socket(path, _clamp(timeout, self._core.ConnectTimeout), socket_options), self._core)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AStream(_Wrapper):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return cast(bytes, await self._inner.read(max_bytes, _clamp(timeout, self._core.ReadTimeout)))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _clamp(timeout, self._core.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> _AStream:
        inner = await self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, self._core.ConnectTimeout))
        return _AStream(inner, self._core)


class _ABackend(_Wrapper):
    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> _AStream:
        timeout = _clamp(timeout, self._core.ConnectTimeout)
        address = host if self._guard is None else await self._guard.avet(host, port, self._provider)
        stream = await self._inner.connect_tcp(address, port, _clamp(timeout, self._core.ConnectTimeout), local_address, socket_options)
        return _AStream(stream, self._core)

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> _AStream:
        if self._guard is not None:
            raise _refused(path, "a Unix socket is not a public address", self._provider)
        stream = await self._inner.connect_unix_socket(path, _clamp(timeout, self._core.ConnectTimeout), socket_options)
        return _AStream(stream, self._core)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# -- transports --------------------------------------------------------------------------------------------------


def _too_large(limit: int, provider: str, declared: int | None = None) -> ProviderError:
    size = f"declares {declared:,} bytes" if declared is not None else f"exceeds {limit:,} bytes"
    return ProviderError(
        f"{provider}'s answer {size}, over the SDK's cap of {limit:,} bytes: it was not read further",
        provider=provider, retryable=False, code="answer_too_large",
    )  # fmt: skip


def _cut_off(provider: str, status: int, error: Exception) -> ProviderUnavailableError:
    """An answer whose body stopped coming (the deadline passed, the connection dropped) after its status came.
    Worth retrying for a read; the caller decides for an answer to work that was done (a 200 to a generation)."""
    left = time_left()
    why = "the call's timeout passed" if left is not None and left <= 0 else (str(error) or type(error).__name__)
    return ProviderUnavailableError(
        f"{provider}'s answer ({status}) was cut off while it was read: {why}",
        provider=provider, status=status, retryable=True, code="answer_cut_off",
    )  # fmt: skip


def _declared_length(headers: Any) -> int | None:
    with contextlib.suppress(TypeError, ValueError):  # None (not declared), or not a number
        return int(headers.get("content-length"))
    return None


@lru_cache(maxsize=4)
def _transport_classes(http: ModuleType) -> tuple[type, type]:
    """A transport for ``http`` (httpx or httpx2) that reads every answer under a cap, sync and async."""

    class CappedStream(http.SyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, limit: int, provider: str, status: int) -> None:
            self._inner, self._limit, self._provider, self._status = inner, limit, provider, status

        def __iter__(self) -> Iterator[bytes]:
            size = 0
            try:
                for chunk in self._inner:
                    size += len(chunk)
                    if size > self._limit:
                        raise _too_large(self._limit, self._provider)
                    yield chunk
            except http.TransportError as exc:
                raise _cut_off(self._provider, self._status, exc) from exc

        def close(self) -> None:
            self._inner.close()

    class ACappedStream(http.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, inner: Any, limit: int, provider: str, status: int) -> None:
            self._inner, self._limit, self._provider, self._status = inner, limit, provider, status

        async def __aiter__(self) -> AsyncIterator[bytes]:
            size = 0
            try:
                async for chunk in self._inner:
                    size += len(chunk)
                    if size > self._limit:
                        raise _too_large(self._limit, self._provider)
                    yield chunk
            except http.TransportError as exc:
                raise _cut_off(self._provider, self._status, exc) from exc

        async def aclose(self) -> None:
            await self._inner.aclose()

    class Transport(http.HTTPTransport):  # type: ignore[misc, name-defined]
        limit: int
        provider: str

        def handle_request(self, request: Any) -> Any:
            response = super().handle_request(request)
            declared = _declared_length(response.headers)
            if declared is not None and declared > self.limit:
                response.close()
                raise _too_large(self.limit, self.provider, declared)
            response.stream = CappedStream(response.stream, self.limit, self.provider, response.status_code)
            return response

    class AsyncTransport(http.AsyncHTTPTransport):  # type: ignore[misc, name-defined]
        limit: int
        provider: str

        async def handle_async_request(self, request: Any) -> Any:
            response = await super().handle_async_request(request)
            declared = _declared_length(response.headers)
            if declared is not None and declared > self.limit:
                await response.aclose()
                raise _too_large(self.limit, self.provider, declared)
            response.stream = ACappedStream(response.stream, self.limit, self.provider, response.status_code)
            return response

    return Transport, AsyncTransport


def transport(
    http: ModuleType, *, asynchronous: bool, limit: int, provider: str, guard: AddressGuard | None = None, **options: Any
) -> Any:
    """An ``http.HTTPTransport`` (or its async twin) under the call's deadline, reading answers under ``limit``
    bytes, and connecting only where ``guard`` allows when one is given."""
    core = __import__("httpcore2" if http.__name__ == "httpx2" else "httpcore")
    sync_class, async_class = _transport_classes(http)
    made = (async_class if asynchronous else sync_class)(**options)
    made.limit, made.provider = limit, provider
    pool = made._pool  # the connection pool httpx made: its network backend is replaced by the SDK's
    pool._network_backend = (_ABackend if asynchronous else _Backend)(pool._network_backend, core, guard, provider)
    return made


FETCH_ATTEMPTS = 3  # a result file that fails to download is asked for again, never made again


def fetch(
    http: ModuleType, client: Any, url: str, guard: AddressGuard, *, provider: str, timeout: float | None,
    signed: Any = None,
) -> bytes:  # fmt: skip
    """A result file's bytes: redirects followed one by one and every URL checked, the body read under the
    transport's cap; a failure that may heal (a dropped connection, a 5xx) tried again while the deadline allows.
    ``signed`` (a client with the API's credentials) makes the first request only: a redirect is followed without
    them, so they never reach the host it leads to."""
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            return _fetch_once(http, client, url, guard, provider, timeout, signed)
        except ProviderError as exc:
            if (pause := _pause_before_retry(exc, attempt)) is None:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


async def afetch(
    http: ModuleType, client: Any, url: str, guard: AddressGuard, *, provider: str, timeout: float | None,
    signed: Any = None,
) -> bytes:  # fmt: skip
    import asyncio

    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            return await _afetch_once(http, client, url, guard, provider, timeout, signed)
        except ProviderError as exc:
            if (pause := _pause_before_retry(exc, attempt)) is None:
                raise
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def _pause_before_retry(error: ProviderError, attempt: int) -> float | None:
    if not error.retryable or attempt >= FETCH_ATTEMPTS:
        return None
    pause = 0.25 * 2 ** (attempt - 1)
    left = time_left()
    return None if left is not None and left <= pause else pause


def _fetch_once(
    http: ModuleType, client: Any, url: str, guard: AddressGuard, provider: str, timeout: float | None, signed: Any
) -> bytes:
    try:
        for hop in range(MAX_REDIRECTS + 1):
            guard.check_url(url, provider)
            with (signed if hop == 0 and signed is not None else client).stream("GET", url, timeout=timeout) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                _check_status(response, url, provider)
                return b"".join(response.iter_bytes())
    except http.HTTPError as exc:
        raise _unreachable(url, exc, provider) from exc
    except (http.InvalidURL, ValueError) as exc:  # a URL httpx cannot send (a NUL, a broken IPv6 host)
        raise _refused(url[:200], f"it is not a URL that can be fetched ({exc})", provider) from None
    raise ProviderError(f"the result {url} redirects more than {MAX_REDIRECTS} times", provider=provider, retryable=False)


async def _afetch_once(
    http: ModuleType, client: Any, url: str, guard: AddressGuard, provider: str, timeout: float | None, signed: Any
) -> bytes:
    try:
        for hop in range(MAX_REDIRECTS + 1):
            guard.check_url(url, provider)
            first = signed if hop == 0 and signed is not None else client
            async with first.stream("GET", url, timeout=timeout) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                _check_status(response, url, provider)
                return b"".join([chunk async for chunk in response.aiter_bytes()])
    except http.HTTPError as exc:
        raise _unreachable(url, exc, provider) from exc
    except (http.InvalidURL, ValueError) as exc:
        raise _refused(url[:200], f"it is not a URL that can be fetched ({exc})", provider) from None
    raise ProviderError(f"the result {url} redirects more than {MAX_REDIRECTS} times", provider=provider, retryable=False)


def _unreachable(url: str, error: Exception, provider: str) -> ProviderUnavailableError:
    left = time_left()
    if left is not None and left <= 0:
        return ProviderUnavailableError(f"the download of {url} did not finish within the call's timeout",
                                        provider=provider, retryable=False)
    return ProviderUnavailableError(f"could not download the result {url}: {error or type(error).__name__}",
                                    provider=provider, retryable=True)


def _check_status(response: Any, url: str, provider: str) -> None:
    status = response.status_code
    if status >= 400:
        # Result files are kept for a while after they are made: a 404 or 410 will not heal, a 5xx or 429 may.
        raise ProviderUnavailableError(
            f"could not download the result {url}: it answered {status}", provider=provider, status=status,
            retryable=status >= 500 or status in (408, 429),
        )  # fmt: skip
    kind = response.headers.get("content-type", "")
    if "html" in kind:
        raise ProviderError(f"the result {url} is an HTML page, not a file", provider=provider, retryable=False)


__all__ = ["AddressGuard", "afetch", "deadline", "fetch", "time_left", "transport"]
