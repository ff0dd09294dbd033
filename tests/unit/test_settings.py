"""Settings: environment parsing, errors that name the variable, secrets kept out of output."""

from __future__ import annotations

import logging

import pytest

from worker.errors import SettingsError
from worker.policy import RetryPolicy
from worker.settings import JobqSettings, env_name, load_settings


def test_defaults_are_production_safe() -> None:
    s = load_settings()
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.queue_name == "arq:queue"  # arq's own default: stock arq clients find the jobs
    assert s.max_tries == 5
    assert s.result_ttl_s == 3600
    assert s.task_modules == []  # jobq's built-in tasks load only when named
    assert s.import_cwd is True
    assert s.signing_key is None
    assert s.sentry_send_job_args is False


def test_environment_sets_every_kind_of_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_MAX_JOBS", "50")
    monkeypatch.setenv("JOBQ_JOB_TIMEOUT_S", "12.5")
    monkeypatch.setenv("JOBQ_TASK_MODULES", "tasks.text, tasks.diagnostics")
    monkeypatch.setenv("JOBQ_REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2:26380")
    monkeypatch.setenv("JOBQ_LOG_FORMAT", "json")
    monkeypatch.setenv("JOBQ_REDIS_TLS_CHECK_HOSTNAME", "false")
    s = load_settings()
    assert s.max_jobs == 50
    assert s.job_timeout_s == 12.5
    assert s.task_modules == ["tasks.text", "tasks.diagnostics"]
    assert s.sentinel_addresses == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert s.log_format == "json"
    assert s.redis_tls_check_hostname is False


def test_json_list_is_accepted_for_list_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_TASK_MODULES", '["a.b", "c"]')
    assert load_settings().task_modules == ["a.b", "c"]


@pytest.mark.parametrize(
    ("variable", "value", "expected_words"),
    [
        ("JOBQ_MAX_JOBS", "lots", "valid integer"),
        ("JOBQ_MAX_JOBS", "0", "greater than or equal to 1"),
        ("JOBQ_REDIS_URL", "http://localhost", "redis://, rediss:// or unix://"),
        ("JOBQ_REDIS_URL", "redis://host/abc", "database after the host must be a number"),
        ("JOBQ_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("JOBQ_REDIS_SENTINELS", "host-without-port", "host:port"),
        ("JOBQ_SENTRY_TRACES_SAMPLE_RATE", "2", "less than or equal to 1"),
        ("JOBQ_REDIS_TLS_VERIFY", "maybe", "'required', 'optional' or 'none'"),
    ],
)
def test_invalid_value_names_the_variable_and_expected_form(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected_words: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert f"{variable}={value!r}" in message
    assert expected_words in message
    assert "expected:" in message  # the field's description says what form is wanted


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_MAX_JOBS", "x")
    monkeypatch.setenv("JOBQ_MAX_TRIES", "-1")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "JOBQ_MAX_JOBS" in message
    assert "JOBQ_MAX_TRIES" in message


def test_secrets_never_appear_in_repr_str_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_REDIS_PASSWORD", "canary-password-1")
    monkeypatch.setenv("JOBQ_SIGNING_KEY", "canary-signing-2")
    monkeypatch.setenv("JOBQ_SENTRY_DSN", "https://canary-dsn-3@sentry.example/1")
    s = load_settings()
    shown = repr(s) + str(s) + str(s.model_dump())
    for canary in ("canary-password-1", "canary-signing-2", "canary-dsn-3"):
        assert canary not in shown
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == "canary-password-1"


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(redis_password=12345678)
    assert "12345678" not in str(info.value)
    assert "JOBQ_REDIS_PASSWORD=<hidden>" in str(info.value)


def test_password_in_url_moves_to_the_secret_field() -> None:
    s = load_settings(redis_url="rediss://app:canary-url-pw@redis.internal:6380/2")
    assert s.redis_url == "rediss://redis.internal:6380/2"
    assert s.redis_username == "app"
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == "canary-url-pw"
    assert "canary-url-pw" not in repr(s)


def test_explicit_password_wins_over_the_url() -> None:
    s = load_settings(redis_url="redis://:from-url@h:1/0", redis_password="explicit")
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == "explicit"


def test_retry_policy_is_built_from_the_settings() -> None:
    s = load_settings(max_tries=7, retry_backoff_base_s=0.5, retry_backoff_factor=3, retry_backoff_max_s=60)
    assert s.retry_policy == RetryPolicy(max_tries=7, backoff_base_s=0.5, backoff_factor=3, backoff_max_s=60)


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.max_jobs = 3  # type: ignore[misc]


def test_unknown_jobq_variable_is_warned_about_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JOBQ_MAX_JOB", "4")
    with caplog.at_level(logging.WARNING, logger="jobq.settings"):
        load_settings()
    assert "JOBQ_MAX_JOB" in caplog.text
    assert "did you mean JOBQ_MAX_JOBS" in caplog.text


def test_every_field_has_a_description() -> None:
    missing = [name for name, info in JobqSettings.model_fields.items() if not info.description]
    assert missing == []


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache:6379/0?password=canary-q",
        "redis://cache:6379/0?username=bob&password=canary-q",
        "rediss://cache:6380/2?socket_timeout=3&password=canary-q&username=bob",
    ],
)
def test_password_in_the_url_query_moves_to_the_secret_field(url: str) -> None:
    s = load_settings(redis_url=url)
    assert s.redis_password is not None
    assert s.redis_password.get_secret_value() == "canary-q"
    assert "canary-q" not in s.redis_url
    assert "password" not in s.redis_url
    assert "username" not in s.redis_url
    assert "canary-q" not in repr(s)
    assert s.redis_username == ("bob" if "username" in url else None)
    assert ("socket_timeout=3" in s.redis_url) is ("socket_timeout" in url)  # other options stay


def test_an_invalid_sentry_dsn_is_a_settings_error_that_hides_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQ_SENTRY_DSN", "canary-dsn-not-a-url")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "JOBQ_SENTRY_DSN=<hidden>: not a Sentry DSN" in str(caught.value)
    assert "canary-dsn" not in str(caught.value)
    assert load_settings(sentry_dsn="https://key@o1.ingest.sentry.io/1").sentry_dsn is not None


@pytest.mark.parametrize("value", ["not json", '{"nightly": "0 3 * * *"', "[nightly]"])
def test_jobq_cron_that_is_not_a_json_object_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("JOBQ_CRON", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "JOBQ_CRON=" in str(caught.value)
    assert "JSON object" in str(caught.value)


def test_an_every_interval_too_long_for_a_clock_is_a_settings_error() -> None:
    from tests.cron_tasks import quarter_hourly
    from worker.taskdef.cron import effective_schedules

    with pytest.raises(SettingsError) as caught:
        effective_schedules([quarter_hourly], {"quarter-hourly": "every 99999999999999999999999h"})
    assert "JOBQ_CRON['quarter-hourly']: an interval must be a positive number of seconds up to" in str(caught.value)


@pytest.mark.parametrize("field", ["job_expires_s", "job_timeout_s", "result_ttl_s", "lease_ttl_s", "poll_delay_s"])
@pytest.mark.parametrize("value", ["inf", "nan", "1e300"])
def test_durations_must_be_finite_and_at_most_ten_years(field: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env_name(field)):
        load_settings(**{field: value})
