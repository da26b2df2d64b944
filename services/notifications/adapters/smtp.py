"""E-mail over SMTP (smtplib): one multipart/alternative message, plain text and HTML.

A send has one total deadline, not a timeout per socket operation: smtplib's timeout applies to
each read, so a relay that accepts and then drips its greeting a byte at a time (or hangs after
DATA) would hold the sender, and the scheduler lease it runs under, for as long as it likes. When
the deadline passes the socket is shut, which ends whatever read or write is waiting on it.
"""
from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

log = logging.getLogger("qiyue.notifications.smtp")


def compose(sender: str, to: str, subject: str, text: str, html: str, *, reference: str) -> EmailMessage:
    """`reference` (the delivery id) goes into Message-ID's left part so a resent mail can be traced."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=reference, domain=sender.rpartition("@")[2].strip(">") or None)
    message["X-Qiyue-Delivery"] = reference
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


class MailDeadlinePassed(TimeoutError):
    """The relay did not finish the conversation before the send's deadline."""


class DeadlineSMTP(smtplib.SMTP):
    """smtplib.SMTP whose whole conversation ends by `until` (time.monotonic())."""

    def __init__(self, until: float):
        self.until = until
        self.expired = threading.Event()
        self._alarm: threading.Timer | None = None
        super().__init__(timeout=self._left())    # no host: connect() is called under the caller's watch

    def _left(self) -> float:
        left = self.until - time.monotonic()
        if left <= 0:
            raise MailDeadlinePassed("the mail's deadline passed")
        return left

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, min(timeout, self._left()))
        # Shut whatever socket the conversation is on when the deadline comes (STARTTLS replaces it).
        self._alarm = threading.Timer(self._left(), self._expire)
        self._alarm.daemon = True
        self._alarm.start()
        return sock

    def _expire(self) -> None:
        self.expired.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass   # closed already

    def close(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        super().close()


class SmtpSender:
    def __init__(self, settings):
        self.settings = settings

    def send(self, message: EmailMessage, deadline: float | None = None) -> None:
        """One attempt, finished by `deadline` (time.monotonic()) or the SMTP timeout, whichever is first."""
        s = self.settings
        until = time.monotonic() + s.smtp_timeout_s
        until = min(until, deadline) if deadline is not None else until
        smtp = DeadlineSMTP(until)
        try:
            with smtp:
                smtp.connect(s.smtp_host, s.smtp_port)
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    smtp.login(s.smtp_username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            if smtp.expired.is_set():
                raise MailDeadlinePassed(f"the mail's deadline passed ({exc})") from None
            raise
        log.info("mail %s sent to %s via %s:%s", message["X-Qiyue-Delivery"], message["To"], s.smtp_host, s.smtp_port)
