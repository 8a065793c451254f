"""Tencent Cloud SMS through the real SDK against the local fake, which checks the
TC3-HMAC-SHA256 signature as Tencent does; each answer becomes the delivery's outcome."""

from __future__ import annotations

import logging

import pytest

from app.config import Config, ConfigError
from notifications import sms
from tests.fakes import tencent_sms as fake_tencent_sms
from tests.notifications.conftest import make_sender


@pytest.fixture
def offered(sms_volunteer, urgent_task, fan_out):
    """offered(n=1): n volunteers who consented, offered an urgent task; (task, volunteers)."""

    def make(n=1):
        volunteers = [sms_volunteer(30 + 5 * i) for i in range(n)]
        task = urgent_task()
        fan_out(task)
        return task, volunteers

    return make


def test_a_wrong_secret_key_is_refused_and_the_sms_recorded_failed(
    offered, run_fallback, sms_rows, tencent
):
    task, _ = offered()
    tencent.use(secret_key="not-the-key")
    assert run_fallback(task) == {"failed": 1}
    assert [r.answer for r in tencent.received] == ["AuthFailure.SignatureFailure"]
    (row,) = sms_rows(task)
    assert (row.status, row.error, row.sent_at) == ("failed", "AuthFailure.SignatureFailure", None)


def test_an_unknown_secret_id_is_refused(offered, run_fallback, sms_rows, tencent):
    task, _ = offered()
    tencent.use(secret_id="AKIDsomeoneelse")
    assert run_fallback(task) == {"failed": 1}
    assert sms_rows(task)[0].error == "AuthFailure.SecretIdNotFound"


def test_the_fake_checks_the_signature_over_the_body(tencent):
    """A body changed after signing no longer matches (the fake hashes what it received)."""
    sender = make_sender(tencent)
    client = sender.client()
    original = client.request.send_request

    def tampered(req):
        req.data = req.data.replace("2000001", "2000002")
        return original(req)

    client.request.send_request = tampered
    (outcome,) = sender.send([sms.Sms("k", "+8613900000001", ("标题", "12:00"))])
    assert (outcome.status, outcome.error) == ("failed", "AuthFailure.SignatureFailure")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("FailedOperation.PhoneNumberInBlacklist", "failed"),
        ("InvalidParameterValue.IncorrectPhoneNumber", "invalid"),
        ("LimitExceeded.PhoneNumberDailyLimit", "failed"),
    ],
)
def test_a_numbers_own_failure_is_recorded_and_the_others_are_sent(
    offered, run_fallback, sms_rows, tencent, code, status
):
    task, (refused, fine) = offered(2)
    tencent.script_number(f"+86{refused.phone}", code)
    assert run_fallback(task) == {status: 1, "sent": 1}
    assert len(tencent.received) == 1  # one request for both numbers
    by_status = {r.status: r for r in sms_rows(task)}
    assert by_status[status].error == code
    assert by_status["sent"].message_id
    assert tencent.delivered() == [f"+86{fine.phone}"]


def test_an_internal_error_is_retried_with_backoff(offered, run_fallback, sms_rows, tencent):
    task, _ = offered()
    tencent.fail_next(["InternalError"])
    assert run_fallback(task) == {"sent": 1}
    assert [r.answer for r in tencent.received] == ["InternalError", "Ok"]
    assert len(tencent.slept) == 1 and tencent.slept[0] >= sms.BACKOFF_S
    assert sms_rows(task)[0].attempts == 2


@pytest.mark.parametrize(
    ("code", "retried"),
    [
        ("InternalError", True),
        ("RequestLimitExceeded", True),
        ("LimitExceeded.PhoneNumberDailyLimit", False),
        ("FailedOperation.SignatureIncorrectOrUnapproved", False),
    ],
)
def test_only_errors_that_sent_nothing_and_may_pass_are_retried(tencent, code, retried):
    tencent.fail_next([code])
    (outcome,) = make_sender(tencent).send([sms.Sms(1, "+8613900000001", ("a",))])
    if retried:
        assert (outcome.status, outcome.attempts) == ("sent", 2)
    else:
        assert (outcome.status, outcome.error, outcome.attempts) == ("failed", code, 1)
        assert len(tencent.received) == 1


def test_internal_errors_that_persist_fail_after_max_attempts(
    offered, run_fallback, sms_rows, tencent
):
    task, _ = offered()
    tencent.fail_next(["InternalError"] * sms.MAX_ATTEMPTS)
    assert run_fallback(task) == {"failed": 1}
    (row,) = sms_rows(task)
    assert (row.error, row.attempts) == ("InternalError", sms.MAX_ATTEMPTS)


def test_a_slow_answer_fails_without_a_second_try(offered, run_fallback, sms_rows, tencent):
    """The SMS may have gone out before the answer was lost: it is not sent twice."""
    task, _ = offered()
    tencent.use(timeout_s=1)
    tencent.delay_s = 1.5
    assert run_fallback(task) == {"failed": 1}
    assert len(tencent.received) == 1
    assert sms_rows(task)[0].error == "ClientNetworkError"


def test_a_slow_answer_within_the_timeout_is_sent():
    with fake_tencent_sms.running(delay_s=0.3) as fake:
        fake.slept = []
        (outcome,) = make_sender(fake, timeout_s=2).send([sms.Sms(1, "+8613900000001", ("a",))])
    assert outcome.status == "sent"


def test_numbers_are_batched_by_template_parameters_once_each():
    messages = [
        sms.Sms(1, "+8613900000001", ("a",)),
        sms.Sms(2, "+8613900000002", ("a",)),
        sms.Sms(3, "+8613900000001", ("a",)),
        sms.Sms(4, "+8613900000001", ("b",)),
    ]
    batches = [[m.key for m in batch] for batch in sms._batches(messages)]
    assert batches == [[1, 2], [3], [4]]
    many = [sms.Sms(i, f"+86139{i:08d}", ("a",)) for i in range(sms.BATCH + 1)]
    assert [len(b) for b in sms._batches(many)] == [sms.BATCH, 1]


def test_without_credentials_sms_are_logged_never_with_the_number(
    offered, run_fallback, sms_rows, caplog
):
    task, (volunteer,) = offered()
    with caplog.at_level(logging.INFO, logger="notifications.sms"):
        assert run_fallback(task) == {"logged": 1}
    assert sms_rows(task)[0].status == "logged"
    assert "sms (logging sender)" in caplog.messages
    for record in caplog.records:
        assert volunteer.phone not in str(record.__dict__)


def test_the_sdk_never_logs_the_numbers_even_at_debug(offered, run_fallback, tencent, caplog):
    task, (volunteer,) = offered()
    tencent.fail_next(["InternalError"])
    with caplog.at_level(logging.DEBUG):
        assert run_fallback(task) == {"sent": 1}
    assert caplog.records  # the logging is on
    for record in caplog.records:
        assert volunteer.phone not in record.getMessage()
        assert volunteer.phone not in str(record.__dict__)


def test_make_sms_sender_uses_tencent_only_with_credentials():
    assert isinstance(sms.make_sms_sender({}), sms.LoggingSmsSender)
    sender = sms.make_sms_sender(
        {
            "TENCENT_SMS_SECRET_ID": "AKIDx",
            "TENCENT_SMS_SECRET_KEY": "k",
            "TENCENT_SMS_SDK_APP_ID": "1400000001",
            "TENCENT_SMS_SIGN_NAME": "群防",
            "TENCENT_SMS_TEMPLATE_ID": "2000001",
            "TENCENT_SMS_REGION": "ap-beijing",
        }
    )
    assert isinstance(sender, sms.TencentSmsSender)
    assert (sender.region, sender.endpoint) == ("ap-beijing", None)


URL = "postgresql+psycopg://u:p@127.0.0.1:1/db"
CREDENTIALS = {
    "TENCENT_SMS_SECRET_ID": "AKIDx",
    "TENCENT_SMS_SECRET_KEY": "k",
    "TENCENT_SMS_SDK_APP_ID": "1400000001",
    "TENCENT_SMS_SIGN_NAME": "群防",
    "TENCENT_SMS_TEMPLATE_ID": "2000001",
}


@pytest.fixture
def env(monkeypatch):
    for name in ("QF_ENV", *CREDENTIALS, "SMS_QUIET_HOURS", "SMS_DAILY_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    return monkeypatch


def test_sms_settings_default_to_the_logging_sender_and_the_issues_values(env):
    config = Config.from_env()
    assert (config.SMS_FALLBACK_AFTER_S, config.SMS_DAILY_LIMIT) == (60, 3)
    assert config.SMS_QUIET_HOURS == "22:00-07:00"
    assert config.TENCENT_SMS_REGION == "ap-guangzhou"
    assert config.TENCENT_SMS_SECRET_ID == ""


def test_tencent_credentials_are_read_from_the_environment(env):
    for name, value in CREDENTIALS.items():
        env.setenv(name, value)
    config = Config.from_env()
    assert config.TENCENT_SMS_TEMPLATE_ID == "2000001"


@pytest.mark.parametrize("missing", sorted(CREDENTIALS))
def test_partial_tencent_credentials_are_refused(env, missing):
    for name, value in CREDENTIALS.items():
        if name != missing:
            env.setenv(name, value)
    with pytest.raises(ConfigError, match=missing):
        Config.from_env()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMS_QUIET_HOURS", "22-7"),
        ("SMS_QUIET_HOURS", "24:00-07:00"),
        ("SMS_DAILY_LIMIT", "-1"),
        ("SMS_FALLBACK_AFTER_S", "0"),
        ("TENCENT_SMS_SDK_APP_ID", "app-1"),
    ],
)
def test_bad_sms_settings_are_refused(env, name, value):
    if name.startswith("TENCENT"):
        for credential, good in CREDENTIALS.items():
            env.setenv(credential, good)
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config.from_env()


def test_no_quiet_hours_is_allowed(env):
    env.setenv("SMS_QUIET_HOURS", "")
    assert Config.from_env().SMS_QUIET_HOURS == ""
