"""setup's pure parts: which value each prompt offers, how answers are checked, the summary, cron lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from crontab import CronTab

from ts_isr.commands import setup, setup_dialogue
from ts_isr.config import Invalid


def test_a_value_given_now_beats_the_previous_one_which_beats_the_default() -> None:
    offered = setup_dialogue.offered_values(
        previous={"port": "5353", "username": "old", "password": "oldpw", "allow_list": ""},
        flags={"port": None, "username": "new", "block_list": None},
        secrets={"password": None, "enable_pw": "fromenv"},
    )
    assert offered["port"] == "5353", "no flag: the previous value"
    assert offered["username"] == "new", "a flag beats the previous value"
    assert offered["password"] == "oldpw" and offered["enable_pw"] == "fromenv"
    assert offered["max_policy_size"] == "30000" and offered["ssh_port"] == "22", "else the default"
    assert offered["allow_list"] == "" and offered["block_list"] == ""


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("port", "0", "must be a whole number from 1 to 65535"),
        ("device", "", "a value is required"),
        ("device", "10.0.0.300", "must be an IP address"),
        ("block_list", "a..b", "must be a DNS name"),
        ("personality", "pix", "must be one of: ios, asa"),
        ("username", "a b", "must not be empty or contain spaces"),
        ("password", "tab\there", "must not contain control characters"),
    ],
)
def test_bad_answers_are_refused_with_the_reason(key: str, text: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        setup_dialogue.check_answer(key, text)


def test_good_answers_are_stored_as_typed() -> None:
    assert setup_dialogue.check_answer("allow_list", "") == ""
    assert setup_dialogue.check_answer("password", " p#w, \"'x ") == " p#w, \"'x "
    assert setup_dialogue.check_answer("max_policy_size", "1000") == "1000"


def test_problems_name_the_flag_or_the_password_source_and_never_show_a_password() -> None:
    values = setup_dialogue.offered_values({}, {}, {"password": "bad\x01pw", "enable_pw": None})
    problems = setup_dialogue.problems_in(values)
    assert "device '': a value is required (set it with --device)" in problems
    assert "block_list '': a value is required (set it with --block-list)" in problems
    [password] = [p for p in problems if p.startswith("password")]
    assert password == (
        "password ******: must not contain control characters (set it with $TS_PASSWORD or --password-file)"
    )
    assert not any("bad\x01pw" in p for p in problems)


def test_summary_follows_the_seed_and_masks_passwords() -> None:
    values = setup_dialogue.offered_values(
        {}, {"device": "192.0.2.1", "username": "tsadmin"}, {"password": "s3cret"}
    )
    text = setup_dialogue.summary(values)
    assert "Chosen configuration parameters" in text
    assert "CISCO device internal IP : 192.0.2.1" in text
    assert "SSH password             : *******" in text
    assert "s3cret" not in text
    assert text.splitlines()[-1] == "Max policy size          : 30000"
    assert "ISR enable password      :" in text.splitlines(), "an unset password shows nothing"


def test_cron_lines_run_the_commands_from_the_package_with_this_python() -> None:
    config = Path("/etc/threat stop/threatstop.conf")
    jobs = setup.cron_jobs(config, python="/opt/venv/bin/python")
    tab = CronTab(tab="")
    for job in jobs:
        tab.new(command=job.command, comment=job.tag).setall(job.schedule)
    upload, logs = list(tab)
    assert str(upload.slices) == "23 */2 * * *" and str(logs.slices) == "53 * * * *"
    assert upload.command == (
        "/opt/venv/bin/python -m ts_isr.commands.upload_rules --config '/etc/threat stop/threatstop.conf'"
    ), "no cd into a source tree: the interpreter that has ts_isr runs it from anywhere"
    assert logs.comment == "ts_isr loguploadclient /etc/threat stop/threatstop.conf"


def test_a_dash_clears_a_hidden_value_too() -> None:
    """Review item 15: the enable password can be cleared at its hidden prompt."""
    question = next(q for q in setup_dialogue.QUESTIONS if q.key == "enable_pw")
    typed = iter(["-"])
    assert setup_dialogue.ask(question, "old-secret", lambda prompt: next(typed)) == ""
    typed = iter([""])
    assert setup_dialogue.ask(question, "old-secret", lambda prompt: next(typed)) == "old-secret"


@pytest.mark.parametrize("personality", ["ios", "asa"])
def test_the_ipv6_groups_are_asked_of_an_ios_device_only(monkeypatch, capsys, personality) -> None:
    """Issue 12: IOS holds IPv6 in object-group v6-network groups of their own; empty = no IPv6."""
    values = setup_dialogue.offered_values({}, {"personality": personality}, {})
    answers = iter(["bad name", "TS6-BLOCK", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers) if "[]" in prompt else "")
    monkeypatch.setattr(setup_dialogue.getpass, "getpass", lambda prompt: "")
    every = setup_dialogue.QUESTIONS
    monkeypatch.setattr(setup_dialogue, "QUESTIONS", tuple(q for q in every if q.ios_only))
    chosen = setup_dialogue.interview(values)
    monkeypatch.setattr(setup_dialogue, "QUESTIONS", every)
    out = capsys.readouterr().out
    if personality == "asa":
        assert "IPv6 object group" not in out and chosen["object_group_block_v6"] == ""
        assert "IPv6 block group" not in setup_dialogue.summary(chosen)
        return
    assert "Invalid object_group_block_v6: must be 1 to 64 letters" in out
    assert (chosen["object_group_block_v6"], chosen["object_group_allow_v6"]) == ("TS6-BLOCK", "")
    assert "IPv6 block group         : TS6-BLOCK" in setup_dialogue.summary(chosen).splitlines()
