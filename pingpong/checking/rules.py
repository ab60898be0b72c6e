"""The rules a run's logs must satisfy, each a method yielding findings — no I/O.

One finding per violation, naming file and line. Each rule is a *protocol* rule (what
happened: numbers, pairings, shares) or a *timing* rule (when it happened: delays,
intervals, timeouts, keepalive cadence), listed in :data:`TIMING_RULES`. A loaded
machine's late timers can break timing rules only, so a run whose findings are all
timing ones is told apart (and the slack that would pass it suggested); protocol rules
are never loosened. Timing rules allow ``slack`` ms on either side, for scheduling
lateness and the millisecond truncation of the logs; the rules on the server's own
timers (delays, keepalive cadence) also allow, on the late side, how late the server
measured those timers itself (``server.err``, see :class:`pingpong.checking.runlogs.TimerLateness`),
and the rules on a client's timers (intervals, timeouts) how late that client measured
its send and timeout timers (``clientK.err``, :class:`pingpong.checking.runlogs.ClientLateness`).

===================  ==========================================================
format               every line of every log parses; the expected files exist
requests             per client, request numbers run 0, 1, 2 … with exactly one
                     outcome (answered or timed out) each
response numbers     in ``server.log``, responses (PONGs and keepalives) are
                     numbered 0, 1, 2 … in the order they were sent, none twice;
                     no client received a number twice
responses delivered  every PONG and keepalive in a client log is in
                     ``server.log`` with the same numbers and consistent times;
                     every PONG the server sent reached its client's log; every
                     keepalive reached a client (unless that client was leaving)
timeouts ignored     every client timeout pairs with a request the server
                     ignored (same request number, received within the
                     timeout); every ignored request pairs with one timeout
delays               server delays within ``delay_ms``
intervals            start-to-start intervals of each client within ``interval_ms``
timeouts             a timeout comes ``timeout_ms`` after its request; answers
                     come before it
ignored share        the share of ignored requests fits the probability
                     (two-sided binomial bound, |z| ≤ 5)
keepalive cadence    each keepalive round starts on a fixed grid of ``keepalive_s``
                     (no drift) and sends its copies without a pause
keepalive rounds     a keepalive round sends one copy per client at most
client numbers       no client number in two logs; ``clientK.log`` starts as
                     client K (runs started by ``pingpong run``)
line order           a client writes each line as its event completes, so in a
                     client log the completion times (answer, timeout, arrival of
                     a keepalive or late PONG) never go back; equal milliseconds
                     are fine (``server.log``'s order is the response numbers')
===================  ==========================================================

A simulated run's ``run.json`` lists each client's **outages** (its connection cut,
closed or no longer read, or the client not reading). What an outage explains is
accepted, and nothing else: a timeout with no ignored request whose wait overlaps
one; a response sent during one (or on its way when it began), or on the connection
it lost, that never reached its client; a gap between two requests across a lost
connection (the schedule starts again with the next one); a keepalive copy to a
connection the server still held after its client had lost it; and a client log
that starts with a later client number because its first connection was lost
before any answer came.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ..core.logformat import Answered, Ignored, TimedOut, Unpaired, format_time
from ..core.protocol import Keepalive, Pong
from ..core.runfolder import SERVER_LOG, client_log_name, client_role
from ..core.settings import RunSettings
from ..core.words import counted
from .runlogs import ClientLateness, RunLogs

__all__ = ["TIMING_RULES", "Rule", "Rules"]

_Z_BOUND = 5.0

#: The rules about when things happened, which timers firing late on a loaded machine
#: can break; every other rule is a protocol rule, about what happened.
TIMING_RULES = frozenset({"delays", "intervals", "timeouts", "keepalive cadence"})


@dataclass
class Rule:
    name: str
    checked: int = 0  # how many things the rule looked at
    findings: list[str] = field(default_factory=list)
    late_ms: float = 0.0  # a timing rule: how far its worst finding is past its bound
    notes: list[str] = field(default_factory=list)  # what it allowed, and why

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def timing(self) -> bool:
        """A timing rule (see :data:`TIMING_RULES`), not a protocol rule."""
        return self.name in TIMING_RULES

    def past(self, by_ms: float) -> None:
        """Note how far past its bound a timing finding is."""
        self.late_ms = max(self.late_ms, by_ms)


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


class Rules:
    """The rules, over one loaded run and the settings it ran with."""

    def __init__(self, logs: RunLogs, settings: RunSettings, slack_ms: float) -> None:
        self.logs = logs
        self.s = settings
        self.slack = slack_ms
        # What the server sent, by response number.
        self.sent_pongs: dict[int, Answered] = {}
        self.sent_keepalives: dict[int, datetime] = {}
        for line in logs.server:
            record = line.record
            if isinstance(record, Answered):
                self.sent_pongs.setdefault(record.response.response, record)
            elif isinstance(record, Unpaired):
                self.sent_keepalives.setdefault(record.response.response, record.response_time)

    def within(self, value: float, low: float, high: float) -> bool:
        return low - self.slack <= value <= high + self.slack

    def interrupted(
        self, log_number: int, start: datetime, end: datetime, *, lost: bool = False
    ) -> bool:
        """Whether an outage of that client (only a ``lost`` one if asked) overlaps start–end.

        An outage reaches back by the network's longest one-way trip, for what was on
        its way when it began.
        """
        margin = self._margin()
        return any(
            outage.overlaps(start, end, margin)
            for outage in self.logs.outages.get(log_number, ())
            if not lost or outage.kind == "lost"
        )

    def _margin(self) -> float:
        return (self.slack + self.logs.network_ms) / 1000

    def lost_connections_held(self, instant: datetime) -> int:
        """How many connections the server still held then that their clients had lost."""
        margin = self._margin()
        return sum(
            outage.loses(instant, margin)
            for outages in self.logs.outages.values()
            for outage in outages
        )

    def lost_in_outage(self, sent: datetime, log_number: int | None, client: int | None) -> bool:
        """Whether a response sent then (to that log's client number ``client``; a keepalive:
        to anyone) was lost in an outage: sent during it, or on a connection it lost."""
        margin = self._margin()
        logs = self.logs.outages if log_number is None else [log_number]
        return any(
            outage.overlaps(sent, sent, margin)
            or ((client is None or outage.connection == client) and outage.loses(sent, margin))
            for number in logs
            for outage in self.logs.outages.get(number, ())
        )

    @staticmethod
    def outside(value: float, low: float, high: float) -> float:
        """How far ``value`` is outside ``low``–``high`` (0 inside)."""
        return max(low - value, value - high, 0.0)

    def allowance(self, late_ms: float | None, who: str = "the server") -> str:
        """What a rule on ``who``'s timers allows past its bound, said in its findings."""
        if not late_ms:
            return ""
        return (
            f" (allowed: {self.slack:g} ms slack + {late_ms:.1f} ms, how late "
            f"{who} measured its timers)"
        )

    @staticmethod
    def allowed_note(what: str, count: int, late_ms: float, who: str = "the server") -> str:
        return (
            f"{who} measured its {what} timers up to {late_ms:.1f} ms late, "
            f"allowed: {count} past the slack alone"
        )

    def client_late(self, log_number: int) -> ClientLateness:
        return self.logs.client_lateness.get(log_number, ClientLateness())

    def run(self) -> list[Rule]:
        return [
            self.format(),
            self.requests(),
            self.response_numbers(),
            self.responses_delivered(),
            self.timeouts_ignored(),
            self.delays(),
            self.intervals(),
            self.timeouts(),
            self.ignored_share(),
            self.keepalive_cadence(),
            self.keepalive_rounds(),
            self.client_numbers(),
            self.line_order(),
        ]

    def format(self) -> Rule:
        rule = Rule("format")
        rule.checked = len(self.logs.server) + sum(map(len, self.logs.clients.values()))
        rule.checked += len(self.logs.bad_lines)
        rule.findings += self.logs.problems
        rule.findings += [str(bad) for bad in self.logs.bad_lines]
        return rule

    def requests(self) -> Rule:
        rule = Rule("requests")
        for number, lines in self.logs.clients.items():
            name = client_log_name(number)
            seen = Counter(
                line.record.request.request
                for line in lines
                if isinstance(line.record, Answered | TimedOut)
            )
            rule.checked += len(seen)
            rule.findings += [
                f"{name}: request {r} has {count} outcome lines"
                for r, count in seen.items()
                if count > 1
            ]
            missing = [r for r in range(max(seen, default=-1) + 1) if r not in seen]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
                rule.findings.append(f"{name}: no outcome for requests {shown}")
        return rule

    def response_numbers(self) -> Rule:
        rule = Rule("response numbers")
        expected = 0
        previous: datetime | None = None
        for line in self.logs.server:
            record = line.record
            if isinstance(record, Ignored):
                continue
            rule.checked += 1
            number = record.response.response
            if number != expected:
                rule.findings.append(
                    f"{SERVER_LOG}:{line.number}: response {number}, expected {expected}"
                )
            expected = number + 1
            if previous is not None and _ms(record.response_time, previous) < -1:
                rule.findings.append(f"{SERVER_LOG}:{line.number}: sent before the line above it")
            previous = record.response_time
        received: Counter[int] = Counter()
        for lines in self.logs.clients.values():
            for client_line in lines:
                if isinstance(client_line.record, Answered | Unpaired):
                    received[client_line.record.response.response] += 1
        rule.findings += [
            f"response {n} received {count} times by clients"
            for n, count in received.items()
            if count > 1
        ]
        return rule

    def responses_delivered(self) -> Rule:
        rule = Rule("responses delivered")
        owner: dict[int, int] = {}  # client number -> client log number
        delivered: set[int] = set()
        last_seen: list[datetime] = []
        for log_number, lines in self.logs.clients.items():
            name = client_log_name(log_number)
            for line in lines:
                record = line.record
                if isinstance(record, TimedOut):
                    continue
                rule.checked += 1
                response = record.response
                delivered.add(response.response)
                where = f"{name}:{line.number}"
                if isinstance(response, Keepalive):
                    sent = self.sent_keepalives.get(response.response)
                    if sent is None:
                        rule.findings.append(f"{where}: {response} is not in {SERVER_LOG}")
                    elif _ms(record.response_time, sent) < -self.slack:
                        rule.findings.append(f"{where}: {response} received before it was sent")
                    continue
                owner.setdefault(response.client, log_number)
                answer = self.sent_pongs.get(response.response)
                if answer is None or answer.response != response:
                    rule.findings.append(f"{where}: {response} is not in {SERVER_LOG}")
                    continue
                if _ms(record.response_time, answer.response_time) < -self.slack:
                    rule.findings.append(f"{where}: {response} received before it was sent")
                if (
                    isinstance(record, Answered)
                    and _ms(answer.request_time, record.request_time) < -self.slack
                ):
                    rule.findings.append(
                        f"{where}: {record.request} reached the server before it was sent"
                    )
            if lines:
                last_seen.append(max(line.record.response_time for line in lines))
        leaving_from = min(last_seen, default=None)
        for number, answer in self.sent_pongs.items():
            rule.checked += 1
            if number not in delivered and answer.response.client in owner:
                log_number = owner[answer.response.client]
                if self.lost_in_outage(answer.response_time, log_number, answer.response.client):
                    continue
                log_name = client_log_name(log_number)
                rule.findings.append(f"{SERVER_LOG}: {answer.response} never reached {log_name}")
        for number, sent in self.sent_keepalives.items():
            rule.checked += 1
            leaving = leaving_from is not None and _ms(sent, leaving_from) >= -self.slack
            if (
                number not in delivered
                and not leaving
                and not self.lost_in_outage(sent, None, None)
            ):
                rule.findings.append(f"{SERVER_LOG}: [{number}] keepalive reached no client log")
        return rule

    def timeouts_ignored(self) -> Rule:
        rule = Rule("timeouts ignored")
        ignored: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
        for line in self.logs.server:
            if isinstance(line.record, Ignored):
                ignored[line.record.request.request].append((line.record.request_time, line.number))
        used: set[int] = set()
        window = self.s.timeout_ms
        # Timeouts an outage explains come last: they must not take an ignored request
        # another timeout needs.
        timeouts = sorted(
            (
                self.interrupted(log_number, record.request_time, record.response_time),
                record.request_time,
                log_number,
                client_line.number,
                record.request.request,
            )
            for log_number, lines in self.logs.clients.items()
            for client_line in lines
            if isinstance(record := client_line.record, TimedOut)
        )
        for explained, sent, log_number, line_number, request in timeouts:
            rule.checked += 1
            candidates = [
                (received, server_line)
                for received, server_line in ignored.get(request, [])
                if server_line not in used and self.within(_ms(received, sent), 0, window)
            ]
            if not candidates and explained:
                continue
            if not candidates:
                rule.findings.append(
                    f"{client_log_name(log_number)}:{line_number}: [{request}] PING timed out "
                    "but the server did not ignore it"
                )
                continue
            used.add(min(candidates)[1])
        for entries in ignored.values():
            for _received, server_line in entries:
                rule.checked += 1
                if server_line not in used:
                    rule.findings.append(
                        f"{SERVER_LOG}:{server_line}: ignored request timed out on no client"
                    )
        return rule

    def delays(self) -> Rule:
        rule = Rule("delays")
        low, high = self.s.delay_ms.low, self.s.delay_ms.high
        # An answer's timer can fire late (never early): as late as the server measured.
        server_late = self.logs.server_lateness.answers_ms or 0.0
        excused = 0
        for line in self.logs.server:
            if isinstance(line.record, Answered):
                rule.checked += 1
                delay = _ms(line.record.response_time, line.record.request_time)
                if self.within(delay, low, high):
                    continue
                if low - self.slack <= delay <= high + self.slack + server_late:
                    excused += 1
                    continue
                rule.past(self.outside(delay, low, high))
                rule.findings.append(
                    f"{SERVER_LOG}:{line.number}: delay {delay:.0f} ms, not in {low}–{high}"
                    + self.allowance(server_late)
                )
        if excused:
            rule.notes.append(self.allowed_note("answer", excused, server_late))
        return rule

    def intervals(self) -> Rule:
        rule = Rule("intervals")
        low, high = self.s.interval_ms.low, self.s.interval_ms.high
        for log_number, lines in self.logs.clients.items():
            # A send timer fires late, never early; the schedule keeps to when each request
            # was due, so a late one also shortens the interval after it.
            late = self.client_late(log_number).sends_ms or 0.0
            who = client_role(log_number)
            excused = 0
            sent = sorted(
                (line.record.request.request, line.record.request_time, line.number)
                for line in lines
                if isinstance(line.record, Answered | TimedOut)
            )
            for (r0, t0, _), (r1, t1, n1) in itertools.pairwise(sent):
                if r1 != r0 + 1:
                    continue  # a gap in the numbers is the "requests" rule's finding
                if self.interrupted(log_number, t0, t1, lost=True):
                    continue  # the schedule starts again with the next connection
                rule.checked += 1
                interval = _ms(t1, t0)
                if self.within(interval, low, high):
                    continue
                if self.within(interval, low - late, high + late):
                    excused += 1
                    continue
                rule.past(self.outside(interval, low, high))
                rule.findings.append(
                    f"{client_log_name(log_number)}:{n1}: request {r1} sent "
                    f"{interval:.0f} ms after request {r0}, not in {low}–{high}"
                    + self.allowance(late, who)
                )
            if excused:
                rule.notes.append(self.allowed_note("send", excused, late, who))
        return rule

    def timeouts(self) -> Rule:
        rule = Rule("timeouts")
        timeout = self.s.timeout_ms
        for log_number, lines in self.logs.clients.items():
            # A timeout timer fires late, never early: as late as the client measured. Till
            # it fires, an answer still pairs.
            late = self.client_late(log_number).timeouts_ms or 0.0
            who = client_role(log_number)
            excused = 0
            for line in lines:
                record = line.record
                if isinstance(record, TimedOut):
                    rule.checked += 1
                    waited = _ms(record.response_time, record.request_time)
                    if self.within(waited, timeout, timeout):
                        continue
                    if self.within(waited, timeout, timeout + late):
                        excused += 1
                        continue
                    rule.past(abs(waited - timeout))
                    rule.findings.append(
                        f"{client_log_name(log_number)}:{line.number}: timed out after "
                        f"{waited:.0f} ms, not {timeout}"
                        + (self.allowance(late, who) if waited > timeout else "")
                    )
                elif isinstance(record, Answered):
                    rule.checked += 1
                    round_trip = _ms(record.response_time, record.request_time)
                    if round_trip <= timeout + self.slack:
                        continue
                    if round_trip <= timeout + self.slack + late:
                        excused += 1
                        continue
                    rule.past(round_trip - timeout)
                    rule.findings.append(
                        f"{client_log_name(log_number)}:{line.number}: answered after "
                        f"{round_trip:.0f} ms, past the {timeout} ms timeout"
                        + self.allowance(late, who)
                    )
            if excused:
                rule.notes.append(self.allowed_note("timeout", excused, late, who))
        return rule

    def ignored_share(self) -> Rule:
        rule = Rule("ignored share")
        n = sum(1 for line in self.logs.server if isinstance(line.record, Answered | Ignored))
        k = sum(1 for line in self.logs.server if isinstance(line.record, Ignored))
        rule.checked = n
        p = self.s.ignore
        if n == 0:
            return rule
        if p in (0.0, 1.0):
            if k != round(n * p):
                rule.findings.append(f"{k} of {n} requests ignored with probability {p:g}")
            return rule
        z = (abs(k - n * p) - 0.5) / math.sqrt(n * p * (1 - p))
        if z > _Z_BOUND:
            rule.findings.append(
                f"{k} of {n} requests ignored ({100 * k / n:.1f} %), expected about "
                f"{100 * p:g} %: z = {z:.1f} > {_Z_BOUND:g}"
            )
        return rule

    def _keepalive_rounds(self) -> list[list[tuple[datetime, int]]]:
        """The keepalive rounds of ``server.log``: each copy's time and line number.

        A round is the keepalives sent within half a period of its first copy (a big
        round goes out in batches, with answers in between, but without a pause).
        """
        period_ms = self.s.keepalive_s * 1000
        rounds: list[list[tuple[datetime, int]]] = []
        for line in self.logs.server:
            record = line.record
            if not isinstance(record, Unpaired):
                continue
            copy = (record.response_time, line.number)
            if rounds and _ms(record.response_time, rounds[-1][0][0]) < period_ms / 2:
                rounds[-1].append(copy)
            else:
                rounds.append([copy])
        return rounds

    def keepalive_cadence(self) -> Rule:
        rule = Rule("keepalive cadence")
        period_ms = self.s.keepalive_s * 1000
        rounds = self._keepalive_rounds()
        for copies in rounds:
            for (previous, _), (time, number) in itertools.pairwise(copies):
                pause = _ms(time, previous)
                if pause > self.slack:
                    rule.past(pause)
                    rule.findings.append(
                        f"{SERVER_LOG}:{number}: keepalive sent {pause:.0f} ms after "
                        "the previous copy of its round"
                    )
        # Each round's phase on the grid, measured from the first round. A timer can fire
        # late but never early, so the earliest phase is the best estimate of the grid
        # itself: measuring from it keeps a late first round from making every punctual
        # round after it look off the grid. A round may be as late as the server measured
        # its keepalive timers.
        server_late = self.logs.server_lateness.keepalives_ms or 0.0
        phases: list[float] = []
        for copies in rounds:
            offset = _ms(copies[0][0], rounds[0][0][0])
            phases.append(offset - round(offset / period_ms) * period_ms)
        grid = min(phases, default=0.0)
        excused = 0
        for copies, phase in zip(rounds, phases, strict=True):
            rule.checked += 1
            drift = phase - grid
            if drift <= self.slack:
                continue
            if drift <= self.slack + server_late:
                excused += 1
                continue
            rule.past(drift)
            rule.findings.append(
                f"{SERVER_LOG}:{copies[0][1]}: keepalive round {drift:+.0f} ms off the "
                f"{self.s.keepalive_s:g} s grid" + self.allowance(server_late)
            )
        if excused:
            rule.notes.append(self.allowed_note("keepalive", excused, server_late))
        return rule

    def keepalive_rounds(self) -> Rule:
        rule = Rule("keepalive rounds")
        clients = max(len(self.logs.clients), self.s.clients)
        for copies in self._keepalive_rounds():
            rule.checked += 1
            # A connection the server still held after its client lost it (an outage of a
            # simulated run) gets its copy too.
            if len(copies) > clients + self.lost_connections_held(copies[0][0]):
                rule.findings.append(
                    f"{SERVER_LOG}:{copies[0][1]}: a keepalive round of {len(copies)} "
                    f"copies for {counted(clients, 'client')}"
                )
        return rule

    def client_numbers(self) -> Rule:
        rule = Rule("client numbers")
        owners: dict[int, set[int]] = defaultdict(set)
        first: dict[int, tuple[int, datetime]] = {}
        for log_number, lines in self.logs.clients.items():
            for line in lines:
                response = getattr(line.record, "response", None)
                if isinstance(response, Pong):
                    owners[response.client].add(log_number)
                    first.setdefault(log_number, (response.client, line.record.response_time))
        for client, logs in sorted(owners.items()):
            rule.checked += 1
            if len(logs) > 1:
                names = ", ".join(client_log_name(n) for n in sorted(logs))
                rule.findings.append(f"client number {client} appears in {names}")
        if self.logs.meta:
            for log_number, (client, when) in first.items():
                start = datetime.min
                if client > log_number and self.interrupted(log_number, start, when, lost=True):
                    continue  # its first connection was lost before any answer came
                if client != log_number:
                    rule.findings.append(
                        f"{client_log_name(log_number)} starts as client {client}, not {log_number}"
                    )
        return rule

    def line_order(self) -> Rule:
        rule = Rule("line order")
        for log_number, lines in self.logs.clients.items():
            for above, line in itertools.pairwise(lines):
                rule.checked += 1
                # Whole dates and times: a log running past midnight compares right.
                if line.record.response_time < above.record.response_time:
                    rule.findings.append(
                        f"client{log_number}.log:{line.number}: completed at "
                        f"{format_time(line.record.response_time)}, before line {above.number} "
                        f"above it ({format_time(above.record.response_time)})"
                    )
        return rule
