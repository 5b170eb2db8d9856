"""Secrets kept beside the store: made once, 0600, whole or not at all; read back as they are;
refused when others could read or change them or when they hold no key."""
import os
import stat

import pytest

from store.keys import (
    AUDIT_KEY_ENV,
    KeyFileError,
    audit_key,
    claim_keying,
    keyed_marker,
    read_secret,
    state_secret,
)


@pytest.fixture
def state(tmp_path):
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path


def test_a_missing_secret_is_made_once_private_and_read_back_the_same(state):
    value = state_secret(state, "audit.key")
    path = state / "audit.key"
    assert len(value) == 32 and path.read_text().strip() == value.hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert state_secret(state, "audit.key") == value
    assert os.listdir(state) == ["audit.key"]  # no temporary file left behind


def test_without_create_a_missing_secret_is_none_and_nothing_is_made(state):
    assert state_secret(state, "audit.key", create=False) is None
    assert not (state / "audit.key").exists()


def test_an_existing_secret_is_read_as_it_is_never_rewritten(state):
    path = state / "audit.key"
    path.write_text("ab" * 20 + "\n")
    path.chmod(0o600)
    assert state_secret(state, "audit.key") == bytes.fromhex("ab" * 20)
    assert path.read_text() == "ab" * 20 + "\n"


@pytest.mark.parametrize("bits", [0o640, 0o604, 0o620])
def test_a_secret_others_could_read_or_change_is_refused(state, bits):
    path = state / "audit.key"
    path.write_text("ab" * 32)
    path.chmod(bits)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_secret(path)


@pytest.mark.parametrize("text", ["", "not hex at all", "ab" * 15])
def test_a_file_that_holds_no_key_is_refused(state, text):
    path = state / "audit.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="does not hold a key"):
        read_secret(path)


def test_a_secret_that_is_a_link_is_not_followed(state, tmp_path):
    elsewhere = tmp_path / "planted"
    elsewhere.write_text("ab" * 32)
    elsewhere.chmod(0o600)
    (state / "audit.key").symlink_to(elsewhere)
    with pytest.raises(KeyFileError, match="cannot be read"):
        state_secret(state, "audit.key")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_a_secret_of_another_user_is_refused(state):
    path = state / "audit.key"
    path.write_text("ab" * 32)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyFileError, match="must be yours"):
        read_secret(path)


def test_the_audit_key_from_the_environment_wins_over_the_file(state):
    assert audit_key(state, environ={AUDIT_KEY_ENV: "k" * 16}) == b"k" * 16
    assert not (state / "audit.key").exists()
    with pytest.raises(KeyFileError, match="shorter than 16"):
        audit_key(state, environ={AUDIT_KEY_ENV: "short"})


def test_without_the_environment_the_audit_key_is_the_state_dirs_file(state):
    assert audit_key(state, environ={}, create=False) is None
    made = audit_key(state, environ={AUDIT_KEY_ENV: ""})  # empty: not given
    assert made == state_secret(state, "audit.key", create=False) and len(made) == 32


def test_the_first_to_claim_the_keying_records_its_key_and_the_others_read_it(state):
    assert keyed_marker(state) is None
    assert claim_keying(state, "id-one") is True
    assert claim_keying(state, "id-two") is False
    assert keyed_marker(state) == "id-one"
