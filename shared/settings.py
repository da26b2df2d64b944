"""Settings for every service, read from `QIYUE_*` environment variables (pydantic-settings)."""
from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_BYTES = 32   # HS256 keys shorter than its 256-bit output can be brute-forced offline from one token


def var_dir() -> Path:
    """Where the embedded databases, logs and the development secret live (QIYUE_VAR_DIR overrides)."""
    import os

    path = Path(os.environ.get("QIYUE_VAR_DIR") or ROOT / "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


def dev_jwt_secret() -> str:
    """A per-checkout development secret, generated once, kept out of the repo (var/ is ignored)."""
    path = var_dir() / "dev-jwt-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Settings(BaseSettings):
    """One settings object per service process.

    Per-service overrides use the service name: `QIYUE_CONTRACTS_DATABASE_URL` beats `QIYUE_DATABASE_URL`.
    """
    model_config = SettingsConfigDict(env_prefix="QIYUE_", extra="ignore")

    service: str = "contracts"
    environment: Literal["development", "production", "test"] = "development"
    database_url: str | None = None
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = 6
    topic_prefix: str = ""               # namespaces every topic (one cluster, several environments; tests)
    kafka_session_timeout_ms: int = 6000
    consumer_max_attempts: int = 3
    migrate_on_start: bool = True
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None       # production: RS256 keys from the identity provider
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_s: int = 24 * 3600  # a token whose exp - iat is longer is refused, however it was signed
    jwt_leeway_s: int = 60               # an issuer's clock this far ahead of ours is allowed (iat)
    jwks_cache_ttl_s: float = 600        # the identity provider's keys are fetched again after this long
    jwks_grace_s: float = 3600           # ... and if that fetch fails, the last good keys serve this much longer
    stream_token_ttl_s: int = 300        # `POST /v1/stream-tokens`: the only tokens accepted in a URL
    # sla: every feed key's secret is derived from this (nothing secret is stored); else from the JWT secret.
    feed_key_secret: SecretStr | None = None
    public_base_url: str | None = None    # links in notifications
    scheduler_interval_s: float = 1.0
    relay_poll_interval_s: float = 0.5   # safety net for commits made by other replicas
    relay_republish_window_s: float = 7 * 86400   # after a broker lost topics, what is published again
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024    # a request body larger than this is refused (413) before it is read
    host: str = "127.0.0.1"
    port: int | None = None

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"QIYUE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                             f"(try `openssl rand -base64 48`)")
        return secret

    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{var_dir() / (self.service + '.db')}"

    def http_port(self) -> int:
        from shared import registry

        return self.port or registry.get(self.service).port

    def jwt_key(self) -> str:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.environment == "production":
            raise RuntimeError("QIYUE_JWT_SECRET or QIYUE_JWT_JWKS_URL must be set in production")
        return dev_jwt_secret()

    def stream_token_key(self) -> str:
        """Stream tokens are ours to sign (HS256), also when bearer tokens come from a JWKS URL."""
        if self.jwt_secret is None and self.environment == "production":
            raise RuntimeError("QIYUE_JWT_SECRET must be set to sign stream tokens, also with QIYUE_JWT_JWKS_URL")
        return self.jwt_key()


    def feed_key_master(self) -> bytes:
        """The key the sla feed-key secrets are derived from: QIYUE_FEED_KEY_SECRET, else derived from the
        HS256 JWT secret (then rotating that secret also invalidates every feed key)."""
        if self.feed_key_secret is not None and self.feed_key_secret.get_secret_value():
            return self.feed_key_secret.get_secret_value().encode()
        import hashlib
        import hmac

        return hmac.new(self.jwt_key().encode(), b"qiyue-feed-key-master", hashlib.sha256).digest()


def settings_for(service: str, **overrides) -> Settings:
    """Settings for `service`: QIYUE_<SERVICE>_X overrides QIYUE_X."""
    import os

    prefix = f"QIYUE_{service.upper()}_"
    specific = {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
    return Settings(service=service, **{**specific, **overrides})


@lru_cache
def cached_settings(service: str) -> Settings:
    return settings_for(service)
