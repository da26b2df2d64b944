"""E-mail over SMTP (smtplib): one multipart/alternative message, plain text and HTML."""
from __future__ import annotations

import logging
import smtplib
import ssl
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


class SmtpSender:
    def __init__(self, settings):
        self.settings = settings

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
            smtp.send_message(message)
        log.info("mail %s sent to %s via %s:%s", message["X-Qiyue-Delivery"], message["To"], s.smtp_host, s.smtp_port)
