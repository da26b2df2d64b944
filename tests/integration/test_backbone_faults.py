"""The backbone's remaining faults (issue 15), each measured by counting effects:

- a mail relay that accepts and then drips or hangs cannot hold a send past its deadline;
- the consumer lag metric shows a backlog being worked off and drains to 0;
- dead letters are listed and re-driven over the admin API, per organisation, once each;
- a consumer process killed (SIGKILL) between its effects and its offset commit, mid-batch under a
  burst, applies every event exactly once after it restarts;
- PostgreSQL unreachable for 5 s under consumption dead-letters nothing, and consuming resumes by itself;
- one contract's events arrive at a consumer in order although a broker restart failed the
  relay's publishes mid-batch.
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
