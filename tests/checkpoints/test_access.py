"""Who acts and what they may do: roles, principals known by token digests only, the tokens
file and environment they come from, the CLI's roles (never from its caller's environment),
and the refusal to start rules that need approvers told apart when there is one identity."""
import json

import pytest

from checkpoints.access import (
    EVERYTHING,
    AccessConfigError,
    Actor,
    Principals,
    cli_actor,
    digest_salt,
    principals_for,
    require_identities,
)
from cluster.config import parse_config
from core.errors import Forbidden

SALT = b"s" * 16
ALICE, BOB = "alice-token-0123456789", "bob-token-0123456789xx"


def config(tmp_path, **doc):
    return parse_config({"state_dir": str(tmp_path / "state"), **doc}, environ={})


def tokens_file(path, *entries, mode=0o600):
    path.write_text("tokens:\n" + "".join(f"  - {{principal: {p}, roles: [{r}], token: {t}}}\n"
                                          for p, r, t in entries))
    path.chmod(mode)
    return path


# -- actors and roles ------------------------------------------------------------------------
def test_an_actor_has_its_roles_every_role_with_admin_and_viewer_always():
    operator = Actor("olga", "api", frozenset({"operator"}))
    assert operator.can("operator") and operator.can("viewer") and not operator.can("approver")
    admin = Actor("ada", "api", frozenset({"admin"}))
    assert all(admin.can(role) for role in ("viewer", "operator", "approver", "admin"))
    assert Actor("nobody", "api", frozenset()).can("viewer")


def test_a_missing_role_is_forbidden_saying_where_roles_come_from():
    viewer = Actor("vera", "cli", frozenset({"viewer"}), roles_from="roles come from tokens.yaml")
    with pytest.raises(Forbidden) as refused:
        viewer.require("approver", "approve plans")
    assert str(refused.value) == \
        "vera lacks the approver role needed to approve plans (roles come from tokens.yaml)"
    Actor("ada", "cli").require("approver", "approve plans")  # single user: everything


def test_an_actor_acting_from_another_source_keeps_who_it_is():
    actor = Actor("olga", "api", frozenset({"operator"}), claimed_name="O", client_address="10.0.0.1")
    auto = actor.as_source("auto")
    assert auto.source == "auto" and (auto.principal, auto.roles, auto.claimed_name,
                                      auto.client_address) == \
        ("olga", frozenset({"operator"}), "O", "10.0.0.1")


# -- principals ------------------------------------------------------------------------------
def test_a_principal_is_known_by_its_token_only():
    principals = Principals([("alice", ALICE, {"approver"}), ("bob", BOB, {"operator", "viewer"})],
                            SALT)
    assert principals.enabled
    assert principals.authenticate(ALICE).name == "alice"
    assert principals.authenticate(BOB).roles == frozenset({"operator", "viewer"})
    assert principals.authenticate("not-a-token-0123456789") is None
    assert not Principals().enabled and Principals().authenticate(ALICE) is None


def test_a_server_given_only_the_digests_knows_the_same_principals():
    digests = Principals([("alice", ALICE, {"approver", "operator"})], SALT).digests()
    assert digests[0]["roles"] == ["approver", "operator"] and ALICE not in json.dumps(digests)
    served = Principals(digests=digests)
    assert served.authenticate(ALICE).roles == frozenset({"approver", "operator"})
    assert served.authenticate(BOB) is None


def test_a_principal_may_have_a_token_per_role_set():
    principals = Principals([("alice", ALICE, {"viewer"}), ("alice", BOB, {"approver"})], SALT)
    assert principals.authenticate(ALICE).roles == frozenset({"viewer"})
    assert principals.authenticate(BOB).roles == frozenset({"approver"})


@pytest.mark.parametrize("entries,says", [
    ([("alice", "short", {"approver"})], "shorter than 16"),
    ([("alice", ALICE, {"superuser"})], "roles must be among"),
    ([("alice", ALICE, set())], "roles must be among"),
    ([("alice", ALICE, {"admin"}), ("bob", ALICE, {"viewer"})], "two principals"),
])
def test_unusable_principals_are_refused(entries, says):
    with pytest.raises(AccessConfigError, match=says):
        Principals(entries, SALT)


def test_principals_come_from_the_environment_the_tokens_file_and_digests(tmp_path):
    path = tokens_file(tmp_path / "tokens.yaml", ("bob", "operator", BOB))
    carol = Principals([("carol", "carol-token-0123456789", {"admin"})], SALT).digests()
    principals = Principals.load(f" alice:approver+operator:{ALICE}:with:colons , ", str(path),
                                 SALT, digests=json.dumps(carol))
    assert principals.authenticate(ALICE + ":with:colons").roles == \
        frozenset({"approver", "operator"})
    assert principals.authenticate(BOB).name == "bob"
    assert principals.authenticate("carol-token-0123456789").name == "carol"


@pytest.mark.parametrize("env,digests,says", [
    ("alice-without-roles", None, "principal:role"),
    (None, "{not json", "not a JSON list"),
    (None, '[{"principal": "a"}]', "not a JSON list"),
    (None, '{"principal": "a", "roles": [], "digest": "x"}', "not a JSON list"),
])
def test_malformed_principals_in_the_environment_are_refused(env, digests, says):
    with pytest.raises(AccessConfigError, match=says):
        Principals.load(env, None, SALT, digests=digests)


def test_a_tokens_file_others_may_read_is_refused(tmp_path):
    path = tokens_file(tmp_path / "tokens.yaml", ("bob", "operator", BOB), mode=0o640)
    with pytest.raises(AccessConfigError, match="chmod 600"):
        Principals.load(None, str(path), SALT)


@pytest.mark.parametrize("text", ["tokens: [{principal: bob}]", "tokens: {bob: x}", "[: oops",
                                  "tokens:\n  - just a string\n"])
def test_a_tokens_file_of_another_shape_says_the_shape_expected(tmp_path, text):
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(AccessConfigError, match=r"expected tokens: \[\{principal, roles, token\}\]"):
        Principals.load(None, str(path), SALT)


def test_a_missing_tokens_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(AccessConfigError, match="missing.yaml"):
        Principals.load(None, str(tmp_path / "missing.yaml"), SALT)


def test_the_salt_is_the_deployments_own_wherever_it_is_made(tmp_path):
    one = digest_salt(config(tmp_path / "a", cluster_name="one"))
    assert one == digest_salt(config(tmp_path / "b", cluster_name="one")) and len(one) == 16
    assert one != digest_salt(config(tmp_path, cluster_name="two"))


def test_principals_for_a_deployment_are_digested_with_its_salt(tmp_path):
    cfg = config(tmp_path, cluster_name="one")
    made = principals_for(cfg, {"RAYDEPLOY_API_TOKENS": f"alice:viewer:{ALICE}"})
    assert made.digests() == Principals([("alice", ALICE, {"viewer"})], digest_salt(cfg)).digests()


# -- the CLI's actor -------------------------------------------------------------------------
def test_without_principals_the_cli_user_may_do_everything(tmp_path):
    actor = cli_actor(config(tmp_path), "olga", claimed="Olga B.", environ={})
    assert (actor.principal, actor.source, actor.roles, actor.claimed_name) == \
        ("olga", "cli", EVERYTHING, "Olga B.")
    assert cli_actor(config(tmp_path), "olga", claimed="olga", environ={}).claimed_name is None


def test_environment_tokens_take_the_cli_users_roles_away_and_never_give_any(tmp_path):
    env = {"RAYDEPLOY_API_TOKENS": f"olga:admin:{ALICE}"}
    actor = cli_actor(config(tmp_path), "olga", environ=env)
    assert actor.roles == frozenset() and "never from RAYDEPLOY_API_TOKENS" in actor.roles_from
    with pytest.raises(Forbidden, match="lacks the operator role"):
        actor.require("operator", "start runs")
    assert cli_actor(config(tmp_path), "olga",
                     environ={"RAYDEPLOY_API_TOKEN_DIGESTS": "[]"}).roles == frozenset()


def test_the_cli_user_has_the_roles_its_own_tokens_file_gives_its_name(tmp_path):
    path = tokens_file(tmp_path / "tokens.yaml", ("olga", "operator", ALICE),
                       ("olga", "viewer", BOB), ("ada", "admin", "ada-token-0123456789"))
    cfg = config(tmp_path, api={"tokens_file": str(path)})
    env = {"RAYDEPLOY_API_TOKENS": f"olga:admin:{'x' * 16}"}  # ignored: the caller's own
    olga = cli_actor(cfg, "olga", environ=env)
    assert olga.roles == frozenset({"operator", "viewer"}) and str(path) in olga.roles_from
    assert cli_actor(cfg, "mallory", environ={}).roles == frozenset()


# -- one identity ----------------------------------------------------------------------------
@pytest.mark.parametrize("approvals,rule", [
    ({"policy": {"worker_launch": {"min_approvals": 2, "distinct": True}}},
     "approvals.policy.worker_launch (min_approvals 2, distinct)"),
    ({"policy": {"teardown": {"exclude_requester": True}}},
     "approvals.policy.teardown (exclude_requester)"),
    ({"forbid_self_approval": True}, "approvals.forbid_self_approval"),
])
def test_rules_that_tell_approvers_apart_need_principals(tmp_path, approvals, rule):
    cfg = config(tmp_path, approvals=approvals)
    with pytest.raises(AccessConfigError, match="one identity") as refused:
        require_identities(cfg, Principals())
    assert rule in str(refused.value)
    require_identities(cfg, Principals([("alice", ALICE, {"approver"})], SALT))


def test_rules_one_person_can_meet_need_no_principals(tmp_path):
    require_identities(config(tmp_path), Principals())
    lenient = {"policy": {"worker_launch": {"min_approvals": 2, "distinct": False}}}
    require_identities(config(tmp_path, approvals=lenient), Principals())
