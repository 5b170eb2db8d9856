"""The state dir must be the user's own: a missing one is made 0700, an existing one is used
as it is or refused (never chmod-ed), each refusal naming the field and what to do."""
import os
import stat

import pytest

from core.errors import Invalid
from store.state_dir import prepare_state_dir


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_missing_state_dir_is_made_private_with_its_parents(tmp_path):
    path = prepare_state_dir(str(tmp_path / "a" / "b" / "state"))
    assert path == tmp_path / "a" / "b" / "state" and path.is_dir() and mode(path) == 0o700


def test_an_existing_private_dir_is_used_as_it_is(tmp_path):
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    (own / "kept").write_text("x")
    assert prepare_state_dir(own) == own and (own / "kept").read_text() == "x"


@pytest.mark.parametrize("bits,says", [(0o770, "writable by others"), (0o707, "writable by others"),
                                       (0o750, "readable by others"), (0o701, "readable by others")])
def test_a_dir_others_may_write_read_or_enter_is_refused_and_left_as_it_is(tmp_path, bits, says):
    shared = tmp_path / "shared dir"
    shared.mkdir()
    shared.chmod(bits)
    with pytest.raises(Invalid, match=says) as refused:
        prepare_state_dir(shared)
    assert refused.value.field == "state_dir"
    assert f"chmod 700 '{shared}'" in str(refused.value)  # quoted: pasted as it is
    assert mode(shared) == bits


def test_a_file_where_the_dir_should_be_is_refused(tmp_path):
    (tmp_path / "state").write_text("not a dir")
    with pytest.raises(Invalid, match="is not a directory"):
        prepare_state_dir(tmp_path / "state")


def test_a_dir_that_cannot_be_made_says_why(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(Invalid, match="cannot be created") as refused:
        prepare_state_dir(tmp_path / "file" / "state")
    assert refused.value.field == "state_dir"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory of another user")
def test_a_dir_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(Invalid, match="belongs to another user"):
        prepare_state_dir(theirs)
