import yaml

from powersync_plugin.core import config_render
from powersync_plugin.core.state import BackendLink, InstanceState, RulesRevision


class EnvLoader(yaml.SafeLoader):
    pass


EnvLoader.add_constructor("!env", lambda loader, node: ("ENV", loader.construct_scalar(node)))


def state_with(rules: str, storage="separate-database", kid="jeeves-dev") -> InstanceState:
    link = BackendLink("jeeves", "jeeves-db", "f1", "f2", ("jeeves",), kid, "https://ps.example.com", 3)
    return InstanceState(
        name="jeeves-powersync", created=True, storage=storage, slot_prefix="ps_jeeves_powersync_",
        audience=("jeeves",), kid=kid, link=link,
        current_rules=RulesRevision(1, 2, rules, "d", "Set rules"),
    )


def test_strings_survive_rendering_byte_for_byte():
    text = "bucket_definitions:\n  by_user:  \n\tparameters: SELECT 'é😀' AS x\r\n\n\n"
    parsed = yaml.load(config_render.render({"extra": text}), Loader=EnvLoader)
    assert parsed["extra"] == text


def test_the_config_carries_no_rules_so_the_deploy_api_stays_enabled():
    # rules in the config make the service refuse /api/sync-rules/v1/deploy (PSYNC_S4105)
    parsed = yaml.load(config_render.render(config_render.desired_config(state_with("streams: {}\n"))), Loader=EnvLoader)
    assert "sync_config" not in parsed and "sync_rules" not in parsed


def test_config_uses_env_references_for_secrets():
    parsed = yaml.load(config_render.render(config_render.desired_config(state_with("streams: {}\n"))), Loader=EnvLoader)
    connection = parsed["replication"]["connections"][0]
    assert connection["type"] == "postgresql"
    assert connection["uri"] == ("ENV", "PS_DATA_SOURCE_URI")
    assert connection["slot_name_prefix"] == "ps_jeeves_powersync_"
    assert parsed["storage"]["uri"] == ("ENV", "PS_STORAGE_SOURCE_URI")
    assert parsed["client_auth"]["jwks"]["keys"] == [{"kty": "oct", "alg": "HS256", "kid": "jeeves-dev", "k": ("ENV", "PS_SECRET_KEY_B64")}]
    assert parsed["client_auth"]["audience"] == ["jeeves"]
    assert parsed["api"]["tokens"] == [("ENV", "PS_API_TOKEN")]
    assert parsed["port"] == 8080


def test_same_database_storage_reads_the_source_uri():
    parsed = yaml.load(
        config_render.render(config_render.desired_config(state_with("streams: {}\n", storage="same-database"))),
        Loader=EnvLoader,
    )
    assert parsed["storage"]["uri"] == ("ENV", "PS_DATA_SOURCE_URI")


def test_key_without_kid_has_no_kid_field():
    parsed = yaml.load(config_render.render(config_render.desired_config(state_with("streams: {}\n", kid=None))), Loader=EnvLoader)
    assert "kid" not in parsed["client_auth"]["jwks"]["keys"][0]


def test_rendering_is_deterministic():
    state = state_with("streams: {}\n")
    assert config_render.render(config_render.desired_config(state)) == config_render.render(config_render.desired_config(state))


def _rendered(state: InstanceState) -> dict:
    return yaml.load(config_render.render(config_render.desired_config(state)), Loader=EnvLoader)


def test_telemetry_unset_renders_no_key_and_the_service_default_shares():
    state = state_with("streams: {}\n")
    assert "telemetry" not in _rendered(state)  # unchanged config for instances that never set it
    assert config_render.telemetry_sharing(state) is True  # disable_telemetry_sharing ?? false upstream


def test_telemetry_setting_renders_disable_telemetry_sharing_as_a_boolean():
    from dataclasses import replace

    off = replace(state_with("streams: {}\n"), telemetry=False)
    assert _rendered(off)["telemetry"] == {"disable_telemetry_sharing": True}
    on = replace(off, telemetry=True)
    assert _rendered(on)["telemetry"] == {"disable_telemetry_sharing": False}


def test_telemetry_setting_wins_over_an_adopted_value_and_keeps_adopted_siblings():
    from dataclasses import replace

    adopted = replace(
        state_with("streams: {}\n"),
        config_extras={"telemetry": {"disable_telemetry_sharing": True, "prometheus_port": 9464}},
    )
    assert config_render.telemetry_sharing(adopted) is False
    assert _rendered(adopted)["telemetry"] == {"disable_telemetry_sharing": True, "prometheus_port": 9464}
    turned_on = replace(adopted, telemetry=True)
    assert config_render.telemetry_sharing(turned_on) is True
    assert _rendered(turned_on)["telemetry"] == {"disable_telemetry_sharing": False, "prometheus_port": 9464}
