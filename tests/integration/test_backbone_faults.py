"""The backbone's remaining faults (issue 15), each measured by counting effects:

- a mail relay that accepts and then drips or hangs cannot hold a send past its deadline;
- the consumer lag metric shows a backlog being worked off and drains to 0;
- dead letters are listed and re-driven over the admin API, per organisation, once each;
- a consumer process killed (SIGKILL) between its effects and its offset commit, mid-batch under a
  burst, applies every event exactly once after it restarts;
- PostgreSQL unreachable for 5 s under consumption dead-letters nothing, and consuming resumes by itself;
- one contract's events arrive at a consumer in order although a broker restart failed the
  relay's publishes mid-batch;
- on SQLite, another writer gets the write lock while the last signature, a revised draft or an
  implemented change request drafts and renders its DOCX.
"""
from __future__ import annotations

import socket
import threading
import time
from email.message import EmailMessage

import pytest

from services.notifications.adapters.smtp import MailDeadlinePassed, SmtpSender
from services.notifications.settings import NotificationSettings
from tests.helpers import wait_until


# --- a mail relay that stalls ------------------------------------------------------------------

class StallingRelay:
    """A raw TCP "mail relay" that misbehaves in one way, and counts the bytes it got to write:

    - `drip`: accepts, then sends its greeting one byte every 50 ms (at most `limit` bytes, then it
      gives up and closes: a client without a total deadline reads them all);
    - `hang`: greets and answers EHLO and MAIL/RCPT properly, then never answers DATA's end.
    """

    def __init__(self, behaviour: str, limit: int = 200):
        self.behaviour, self.limit = behaviour, limit
        self.written = 0
        self.closed_by_client = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name=f"smtp-{behaviour}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            try:
                self._drip(conn) if self.behaviour == "drip" else self._hang(conn)
            except OSError:
                self.closed_by_client.set()

    def _drip(self, conn: socket.socket) -> None:
        greeting = b"220 " + b"x" * self.limit + b"\r\n"
        conn.settimeout(0.05)
        for byte in greeting[:self.limit]:
            conn.sendall(bytes([byte]))
            self.written += 1
            try:
                if conn.recv(1) == b"":   # the client shut its side: it gave up on us
                    self.closed_by_client.set()
                    return
            except socket.timeout:
                pass                      # the 50 ms between two bytes

    def _hang(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"220 stalling relay\r\n")
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.sendall(b"250 stalling relay\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                while (data := reader.readline()) not in (b".\r\n", b""):
                    pass
                self.written += 1         # the whole message came; it is never acknowledged
                if reader.readline() == b"":
                    self.closed_by_client.set()
                return
            else:
                conn.sendall(b"250 ok\r\n")
        self.closed_by_client.set()

    def stop(self) -> None:
        self.server.close()
        self.thread.join(5)


def _mail() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "q@example.com", "pm@example.com", "hi"
    message["X-Qiyue-Delivery"] = "d-1"
    message.set_content("hello")
    return message


@pytest.mark.parametrize("behaviour", ["drip", "hang"])
def test_a_stalling_mail_relay_cannot_hold_a_send_past_its_deadline(behaviour):
    relay = StallingRelay(behaviour)
    sender = SmtpSender(NotificationSettings(environment="test", smtp_host="127.0.0.1", smtp_port=relay.port,
                                             smtp_timeout_s=30))
    try:
        with pytest.raises(MailDeadlinePassed):
            sender.send(_mail(), deadline=time.monotonic() + 1.0)
        # The relay saw us go: a drip of 50 ms a byte got about 20 bytes out in the second, far
        # from the 200 a per-read timeout lets it write; the hung DATA was given up on.
        wait_until(relay.closed_by_client.is_set, 10, message="the sender hung up on the relay")
        if behaviour == "drip":
            assert relay.written < 100
    finally:
        relay.stop()


# --- dead letters over the admin API -----------------------------------------------------------

from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select  # noqa: E402

from shared import dead_letters  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.events.base import EventPayload  # noqa: E402
from shared.kafka import Subscription  # noqa: E402
from shared.service import Runtime, ServiceSpec, create_app, with_bookkeeping  # noqa: E402
from tests.helpers import auth  # noqa: E402
from tests.integration.test_event_backbone import TOPIC, _sample, producer_spec, runtime, unpublished  # noqa: E402


class OrgNote(EventPayload):
    """A note of one organisation (events carry their organisation, as every service's do)."""
    event_type = "org_note.written"
    topic = TOPIC
    contract_id: str
    org: str
    text: str


def note_consumer_spec(failing: set[str], name: str = "consumer") -> ServiceSpec:
    """Records one effect (event id, key, text) per note; a note whose text is in `failing` raises."""
    md = with_bookkeeping(MetaData())
    effects = Table("effects", md, Column("n", Integer, primary_key=True, autoincrement=True),
                    Column("event_id", String(64)), Column("key", String(40)), Column("text", String(40)))

    def on_note(envelope: Envelope, uow) -> None:
        note = envelope.payload(OrgNote)
        if note.text in failing:
            raise ValueError(f"{note.text} cannot be handled yet")
        uow.session.execute(insert(effects).values(event_id=envelope.id, key=note.contract_id, text=note.text))

    return ServiceSpec(name=name, metadata=md, migrations_dir=Path("."), routers=[],
                       subscription=Subscription((TOPIC,), {OrgNote.event_type: on_note}),
                       on_start=lambda rt: md.create_all(rt.db.writer))


def applied(rt: Runtime) -> list[str]:
    t = rt.spec.metadata.tables["effects"]
    with rt.db.read_session() as s:
        return [r.text for r in s.execute(select(t.c.text).order_by(t.c.n))]


def write(rt: Runtime, org: str, *texts: str, key: str = "") -> None:
    with rt.uow() as uow:
        for text in texts:
            uow.emit(OrgNote(contract_id=key or f"c-{text}", org=org, text=text))
        uow.commit()


def test_dead_letters_are_listed_and_redriven_per_organisation_once_each(make_settings):
    failing = {"acme-bad-1", "acme-bad-2", "globex-bad"}
    prod = runtime(producer_spec(), make_settings)
    app = create_app(note_consumer_spec(failing), make_settings("consumer", migrate_on_start=False))
    acme, globex = auth("admin", org="acme"), auth("admin", org="globex")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            cons = app.state.runtime
            write(prod, "acme", "acme-ok-1", "acme-bad-1", "acme-bad-2")
            write(prod, "globex", "globex-bad", "globex-ok")
            wait_until(lambda: _sample(cons, "qiyue_events_dead_lettered_total") == 3, 40, message="three letters")
            wait_until(lambda: sorted(applied(cons)) == ["acme-ok-1", "globex-ok"], 20, message="the good notes")

            def listed(headers) -> list[str]:
                answer = client.get("/v1/admin/dead-letters", headers=headers)
                assert answer.status_code == 200, answer.text
                return sorted(i["event_type"] + ":" + i["error"].split()[0] for i in answer.json()["items"])
            wait_until(lambda: len(listed(acme)) == 2, 20, message="acme's two letters listed")
            assert listed(acme) == ["org_note.written:acme-bad-1", "org_note.written:acme-bad-2"]
            assert listed(globex) == ["org_note.written:globex-bad"]          # never the other's
            assert client.get("/v1/admin/dead-letters", headers=auth("viewer", org="acme")).status_code == 403
            assert client.post("/v1/admin/dead-letters/redrive", headers=auth("legal", org="acme")).status_code == 403

            failing.clear()                                                   # the cause is fixed
            answer = client.post("/v1/admin/dead-letters/redrive", headers=acme)
            assert answer.status_code == 200 and answer.json() == {"redriven": 2}, answer.text
            wait_until(lambda: {"acme-bad-1", "acme-bad-2"} <= set(applied(cons)), 30, message="acme's redriven")
            assert client.post("/v1/admin/dead-letters/redrive", headers=acme).json() == {"redriven": 0}
            assert listed(acme) == []
            # A fence: a note written now is applied after anything redriven before it.
            write(prod, "acme", "fence")
            wait_until(lambda: "fence" in applied(cons), 30, message="the fence")
            assert "globex-bad" not in applied(cons)                          # not globex's to redrive by acme

            assert client.post("/v1/admin/dead-letters/redrive", headers=globex).json() == {"redriven": 1}
            wait_until(lambda: "globex-bad" in applied(cons), 30, message="globex's redriven")
            assert Counter(applied(cons)) == Counter({t: 1 for t in (
                "acme-ok-1", "acme-bad-1", "acme-bad-2", "globex-bad", "globex-ok", "fence")})
            assert _sample(cons, "qiyue_events_dead_lettered_total") == 3     # none failed again
            # `qiyue dlq redrive` (every organisation, its own redrive group) sends all three once
            # more, once: the inbox absorbs them.
            where = (cons.settings.kafka_bootstrap, cons.consumer.group_id, [cons.settings.topic_prefix + TOPIC])
            assert dead_letters.redrive(*where) == 3 and dead_letters.redrive(*where) == 0
            wait_until(lambda: _sample(cons, "qiyue_events_consumed_total", outcome="duplicate") >= 3, 30,
                       message="the command's copies absorbed")
            assert len(applied(cons)) == 6
    finally:
        prod.stop()


# --- the consumer lag metric -------------------------------------------------------------------

def test_the_consumer_lag_shows_the_backlog_in_hand_and_drains_to_zero(make_settings):
    gate, notes = threading.Event(), [f"n{i}" for i in range(30)]
    md = with_bookkeeping(MetaData())
    effects = Table("effects", md, Column("n", Integer, primary_key=True, autoincrement=True),
                    Column("text", String(40)))

    def on_note(envelope: Envelope, uow) -> None:
        gate.wait(60)              # the first batch is held in hand: polled, not yet applied
        uow.session.execute(insert(effects).values(text=envelope.payload(OrgNote).text))

    spec = ServiceSpec(name="consumer", metadata=md, migrations_dir=Path("."), routers=[],
                       subscription=Subscription((TOPIC,), {OrgNote.event_type: on_note}),
                       on_start=lambda rt: md.create_all(rt.db.writer))
    prod, cons = runtime(producer_spec(), make_settings), runtime(spec, make_settings)
    try:
        wait_until(cons.consumer.ready.is_set, 30, message="consumer assigned")
        write(prod, "acme", *notes, key="one-contract")          # one key: one partition, one poll
        wait_until(lambda: _sample(cons, "qiyue_consumer_lag") == 30, 30, message="the backlog of 30 shown")
        gate.set()

        def stored() -> int:
            with cons.db.read_session() as s:
                return len(s.execute(select(effects.c.n)).all())
        wait_until(lambda: stored() == 30, 30, message="all thirty applied")
        wait_until(lambda: _sample(cons, "qiyue_consumer_lag") == 0, 30, message="the lag drained to 0")
    finally:
        gate.set()
        cons.stop()
        prod.stop()


# --- a consumer process killed between its effects and its offset commit ----------------------

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from shared.settings import ROOT  # noqa: E402


def consumer_process(settings, topic_prefix: str, log: Path, hold_after: int = 0,
                     marker: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYUE_")}
    command = [sys.executable, "-m", "tests.integration.backbone_consumer", "--database-url", settings.database_url,
               "--bootstrap", settings.kafka_bootstrap, "--prefix", topic_prefix]
    if hold_after:
        command += ["--hold-after", str(hold_after), "--marker", str(marker)]
    with log.open("ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def effect_ids(db_url: str) -> list[str]:
    from shared.db import Database

    db = Database.connect(db_url)
    try:
        effects = note_consumer_spec(set()).metadata.tables["effects"]
        with db.read_session() as s:
            return list(s.scalars(select(effects.c.event_id)))
    except Exception:
        return []          # the table is not there yet: the process has not started
    finally:
        db.dispose()


def burst(prod: Runtime, tag: str, count: int) -> None:
    """`count` notes over twelve contracts (so on every partition), ten to a transaction."""
    texts = [f"{tag}-{i}" for i in range(count)]
    for start in range(0, count, 10):
        with prod.uow() as uow:
            for text in texts[start:start + 10]:
                uow.emit(OrgNote(contract_id=f"c-{hash(text) % 12}", org="acme", text=text))
            uow.commit()


def outbox_ids(prod: Runtime) -> set[str]:
    t = prod.tables["outbox"]
    with prod.db.read_session() as s:
        return set(s.scalars(select(t.c.event_id)))


def test_a_consumer_process_killed_between_effects_and_offset_commit_applies_each_event_once(
        make_settings, topic_prefix, tmp_path):
    prod = runtime(producer_spec(), make_settings)
    settings = make_settings("consumer")
    log, marker = tmp_path / "consumer.log", tmp_path / "held"
    first = second = None
    try:
        burst(prod, "before", 150)
        wait_until(lambda: len(outbox_ids(prod)) == 150, 10, message="the burst written")
        first = consumer_process(settings, topic_prefix, log, hold_after=5, marker=marker)
        wait_until(lambda: marker.exists() or first.poll() is not None, 60, message="the process held mid-batch")
        assert marker.exists(), f"the consumer process ended before holding:\n{log.read_text()[-2000:]}"
        in_the_window = len(effect_ids(settings.database_url))
        assert in_the_window >= 5                  # its batch's effects are committed, its offsets are not
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        burst(prod, "during", 50)                  # more keeps coming while it is dead

        second = consumer_process(settings, topic_prefix, log)
        everything = outbox_ids(prod)
        wait_until(lambda: set(effect_ids(settings.database_url)) == everything, 90,
                   message=f"every event applied after the restart:\n{log.read_text()[-2000:]}")
        applied_ids = effect_ids(settings.database_url)
        assert len(applied_ids) == len(everything) == 200                 # 0 lost, 0 doubled
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        prod.stop()


# --- the database away for 5 s under consumption (PostgreSQL) -----------------------------------

from tests.tcp_proxy import TcpProxy  # noqa: E402


def test_the_database_unreachable_for_5_s_under_consumption_dead_letters_nothing(backend, databases, make_settings):
    if backend != "postgres":
        pytest.skip("a TCP proxy stands between the service and PostgreSQL; SQLite has no line to cut")
    direct = databases.new("consumer")
    host_port = direct.split("@", 1)[1].split("/", 1)[0]
    proxy = TcpProxy(host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 5432)
    proxied = direct.replace(f"@{host_port}/", f"@127.0.0.1:{proxy.port}/")
    prod = runtime(producer_spec(), make_settings)
    cons = runtime(note_consumer_spec(set()), make_settings, database_url=proxied)
    try:
        wait_until(cons.consumer.ready.is_set, 30, message="consumer assigned")
        burst(prod, "before", 40)
        wait_until(lambda: len(applied(cons)) == 40, 30, message="consuming before the cut")

        proxy.cut()
        cut_at, written = time.monotonic(), 40
        while time.monotonic() - cut_at < 5.0:       # events keep flowing for the 5 s the database is away
            burst(prod, f"cut{written}", 10)
            written += 10
            threading.Event().wait(0.25)             # pacing the writer, not waiting for anything
        proxy.restore()

        everything = outbox_ids(prod)
        wait_until(lambda: set(effect_ids(direct)) == everything, 90, message="consuming resumed by itself")
        assert len(effect_ids(direct)) == len(everything) == written      # 0 lost, 0 doubled
        assert _sample(cons, "qiyue_events_dead_lettered_total") == 0      # nothing dead-lettered for it
        assert _sample(cons, "qiyue_events_consumed_total", outcome="retried") >= 1   # it did meet the outage
    finally:
        cons.stop()
        prod.stop()
        proxy.close()


# --- one contract's events in order although publishes fail mid-batch ---------------------------

from shared.broker import EmbeddedBroker, free_port  # noqa: E402


def test_one_contracts_events_arrive_in_order_when_the_broker_restarts_mid_batch(make_settings, tmp_path):
    """Notes of one contract are written without pause while the broker is killed and restarted
    under the relay's publishing; every one is applied once and in the order written (the consumer
    applies the first copy of each event it sees, so a late or overtaking copy would show)."""
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log").start()
    prod = runtime(producer_spec(), make_settings, kafka_bootstrap=broker.bootstrap)
    cons = runtime(note_consumer_spec(set()), make_settings, kafka_bootstrap=broker.bootstrap)
    written: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            texts = [f"n{i}" for i in range(n, n + 10)]
            write(prod, "acme", *texts, key="one-contract")
            written.extend(texts)
            n += 10
            stop.wait(0.1)      # pacing: a steady stream, not a synchronisation

    thread = threading.Thread(target=writer, name="writer", daemon=True)
    try:
        wait_until(cons.consumer.ready.is_set, 30, message="consumer assigned")
        thread.start()
        wait_until(lambda: len(applied(cons)) >= 100, 30, message="the stream flowing")
        broker.process.kill()                          # mid-stream: publishes fail mid-batch
        broker.process.wait()
        down_at = len(written)
        wait_until(lambda: len(written) >= down_at + 50, 30, message="writes go on without the broker")
        broker = EmbeddedBroker(port, tmp_path / "broker.log").start()
        back_at = len(written)
        wait_until(lambda: len(written) >= back_at + 50, 30, message="writes after the restart")
        stop.set()
        thread.join(10)
        wait_until(lambda: len(applied(cons)) >= len(written), 90,
                   message=f"every note applied ({len(applied(cons))} of {len(written)}; unpublished "
                           f"{unpublished(prod)}, lag {_sample(cons, 'qiyue_consumer_lag')})")
        assert applied(cons) == written                # once each, in the order written
        assert _sample(prod, "qiyue_outbox_republished_total") > 0       # the restart did cost publishes
    finally:
        stop.set()
        cons.stop()
        prod.stop()
        broker.stop()


# --- on SQLite, slow rendering happens outside the write lock ------------------------------------

PROBE_DEADLINE_S = 5


def _probing_the_write_lock(client, render, probes: list[str]):
    """`render` that first takes the SQLite write lock from another connection (what a consumer's
    unit of work does first), and notes whether it got it. A render inside the request's write
    transaction holds that lock until the render returns, so the probe cannot get it however long
    it waits; the deadline only lets the service's own background writers (relay, scheduler,
    consumers) finish their short transactions."""
    import sqlite3

    path = client.app.state.runtime.settings.db_url().split("///", 1)[1]

    def probed(*args, **kwargs):
        other = sqlite3.connect(path, timeout=PROBE_DEADLINE_S, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            probes.append("free")
        except sqlite3.OperationalError as exc:
            probes.append(str(exc))
        finally:
            other.close()
        return render(*args, **kwargs)
    return probed


def _sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the single write lock is SQLite's")


def test_the_last_signature_renders_its_document_outside_the_write_lock(backend, start_service, monkeypatch):
    """While the DOCX renders, another writer (a consumer, say) gets the SQLite write lock at once."""
    from services.contracts.service_layer import lifecycle
    from tests.integration.test_contracts_lifecycle import REVIEWER, VENDOR, act, ok, seed

    _sqlite_only(backend)
    contracts = start_service("contracts")
    cid = seed(contracts, status="out_for_signature")
    _vendor_is(contracts, cid, "91320114MA20CY8H6N")     # VENDOR's company
    probes: list[str] = []
    monkeypatch.setattr(lifecycle, "render_docx", _probing_the_write_lock(contracts, lifecycle.render_docx, probes))
    ok(act(contracts, cid, "sign", VENDOR, party="vendor", signatory="林嘉怡", method="electronic"))
    signed = ok(act(contracts, cid, "sign", REVIEWER, party="client", signatory="何建平", method="company_seal"))
    assert signed["signed_sha256"]
    assert probes == ["free"]                      # rendered once, with the write lock free


def _vendor_is(contracts, cid: str, party: str) -> None:
    """The seeded contract's vendor is `party`'s company (a vendor reaches only its own contracts)."""
    from sqlalchemy import update

    from services.contracts.adapters.tables import ContractRow

    with contracts.app.state.runtime.db.write_session() as session:
        session.execute(update(ContractRow).where(ContractRow.id == cid).values(vendor_party=party))
        session.commit()


def _probe_drafting(contracts, monkeypatch) -> list[str]:
    """Probe the write lock while a new version is drafted and while its DOCX renders."""
    from services.contracts.service_layer import drafting

    probes: list[str] = []
    monkeypatch.setattr(drafting, "draft", _probing_the_write_lock(contracts, drafting.draft, probes))
    monkeypatch.setattr(drafting, "render_docx", _probing_the_write_lock(contracts, drafting.render_docx, probes))
    return probes


def test_revising_a_draft_drafts_and_renders_the_new_version_outside_the_write_lock(backend, start_service,
                                                                                   monkeypatch):
    from tests.integration.test_contracts_lifecycle import DRAFTER, draft

    _sqlite_only(backend)
    contracts = start_service("contracts")
    cid = draft(contracts, "software_development")["id"]
    probes = _probe_drafting(contracts, monkeypatch)
    revised = contracts.patch(f"/v1/contracts/{cid}", json={"variables": {"project_name": "订单中台二期"}},
                              headers={**DRAFTER, "If-Match": '"1"'})
    assert revised.status_code == 200, revised.text
    assert revised.json()["version"] == 2
    assert probes == ["free", "free"]              # drafted once and rendered once, the write lock free


def test_implementing_a_change_request_renders_the_amendment_outside_the_write_lock(backend, start_service,
                                                                                   monkeypatch):
    from tests.integration.test_change_requests import (END_DATE_CHANGE, PM, REVIEWER, assess, created,
                                                        raise_request, signed_contract)
    from tests.integration.test_contracts_lifecycle import ok

    _sqlite_only(backend)
    contracts = start_service("contracts")
    cid = signed_contract(contracts, "zh-CN")
    cr = created(raise_request(contracts, cid, END_DATE_CHANGE, ["schedule"], "Longer term"))
    assess(contracts, cr["id"], "0.00")
    assert ok(contracts.post(f"/v1/change-requests/{cr['id']}/approve", headers=PM))["status"] == "approved"
    probes = _probe_drafting(contracts, monkeypatch)
    implemented = ok(contracts.post(f"/v1/change-requests/{cr['id']}/implement", headers=REVIEWER))
    assert implemented["implemented_version"] == 2
    assert probes == ["free", "free"]              # drafted once and rendered once, the write lock free
