"""Driving a gateway with the personas over real HTTP, and collecting what the detector decided."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from policies.detector.sim.personas import Account, Persona


@dataclass
class RunLog:
    started: float = 0.0
    duration: float = 1.0
    finished: float = 0.0
    sent: dict[str, list[float]] = field(default_factory=dict)  # account -> send times
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    first_blocked: dict[str, int] = field(default_factory=dict)  # account -> request index of the first 403
    cluster_times: dict[str, list[float]] = field(default_factory=dict)  # persona -> send times
    errors: Counter[str] = field(default_factory=Counter)


def make_accounts(personas: list[Persona], seed: int) -> list[Account]:
    master = random.Random(seed)
    accounts: list[Account] = []
    for persona in personas:
        if isinstance(persona.networks, int):
            networks = [
                f"{master.randint(11, 223)}.{master.randint(0, 255)}.{master.randint(0, 255)}.0/24"
                for _ in range(min(persona.networks, persona.accounts))
            ]
        else:
            networks = persona.networks
        for number in range(persona.accounts):
            rng = random.Random(master.getrandbits(64))
            network = networks[number % len(networks)]
            base = network.split("/")[0].rsplit(".", 1)[0]
            account = Account(
                f"{persona.name}-{number:04d}", persona, ip=f"{base}.{rng.randint(1, 254)}", rng=rng
            )
            accounts.append(account)
    return accounts


def _headers(account: Account) -> dict[str, str]:
    client = account.persona.client
    headers = {"user-agent": client.user_agent}
    headers.update(dict(client.headers))
    headers["authorization"] = f"Bearer {account.key}"
    headers["x-forwarded-for"] = account.ip
    return headers


def _reply_text(raw: bytes, stream: bool) -> str:
    if not stream:
        try:
            payload = orjson.loads(raw)
            return str(payload["choices"][0]["message"].get("content") or "")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return ""
    parts: list[str] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            try:
                chunk = orjson.loads(line[6:])
                for choice in chunk.get("choices") or []:
                    parts.append((choice.get("delta") or {}).get("content") or "")
            except (orjson.JSONDecodeError, AttributeError):
                continue
    return "".join(parts)


class Bases:
    """The gateways' base URLs, one per replica, taken in turn per request (a round-robin balancer)."""

    def __init__(self, urls: str | Sequence[str]) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.turn = 0

    def next(self) -> str:
        url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return url


async def _send(
    session: aiohttp.ClientSession, bases: Bases, account: Account, log: RunLog, limit: asyncio.Semaphore
) -> None:
    persona = account.persona
    progress = (time.time() - log.started) / log.duration
    request = persona.next_request(account, progress)
    body = dict(request.body)
    if request.stream:
        body["stream"] = True
    async with limit:
        sent_at = time.time()
        log.sent[account.name].append(sent_at)
        if persona.cluster:
            log.cluster_times.setdefault(persona.name, []).append(sent_at)
        try:
            async with session.post(
                bases.next() + request.path, data=orjson.dumps(body), headers=_headers(account)
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.errors[type(exc).__name__] += 1
            status, raw = 0, b""
    log.statuses[account.name][status] += 1
    account.sent += 1
    if status == 403 and account.name not in log.first_blocked:
        log.first_blocked[account.name] = account.sent
    if status == 200 and persona.multi_turn and account.history:
        account.history.append({"role": "assistant", "content": _reply_text(raw, request.stream)[:600]})


async def _drive_account(
    session: aiohttp.ClientSession,
    base: Bases,
    account: Account,
    log: RunLog,
    limit: asyncio.Semaphore,
) -> None:
    """Send the account's requests on their schedule (absolute times, so lateness does not add up).

    Conversational personas wait for each answer (the next turn needs it); the others (batch jobs,
    services) keep up to ``persona.parallel`` requests in flight.
    """
    persona = account.persona
    rng = account.rng
    duration = log.duration
    span = duration * persona.spread
    next_at = log.started + rng.uniform(0, max(0.0, duration - span) + 0.05 * duration)
    interval = span / max(1, persona.requests)
    regular = persona.style == "batch"
    log.sent.setdefault(account.name, [])
    log.statuses.setdefault(account.name, Counter())
    in_flight: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(max(1, persona.parallel))
    for _ in range(persona.requests):
        delay = next_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at += interval if regular else interval * rng.uniform(0.3, 1.7)
        if persona.parallel <= 1:
            await _send(session, base, account, log, limit)
            continue
        await slots.acquire()
        task = asyncio.create_task(_send(session, base, account, log, limit))
        in_flight.add(task)
        task.add_done_callback(_finished(in_flight, slots))
    if in_flight:
        await asyncio.gather(*in_flight)


def _finished(
    in_flight: set[asyncio.Task[None]], slots: asyncio.Semaphore
) -> Callable[[asyncio.Task[None]], None]:
    """The done callback of one parallel request: forget the task, free its slot."""

    def done(task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        slots.release()

    return done


async def drive(
    base: str | Sequence[str], accounts: list[Account], duration: float, concurrency: int = 48
) -> RunLog:
    """Send every account's requests, spread over about ``duration`` seconds (round-robin over ``base``
    when it names several replicas)."""
    bases = Bases(base)
    log = RunLog(started=time.time(), duration=duration)
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(_drive_account(session, bases, a, log, limit) for a in accounts))
    log.finished = time.time()
    return log


async def fetch_admin(base: str, token: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers={"authorization": f"Bearer {token}"}) as response,
    ):
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"admin API {path}: HTTP {response.status}: {body[:200]!r}")
        return orjson.loads(body)


async def fetch_text(base: str, path: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        return await response.text()
