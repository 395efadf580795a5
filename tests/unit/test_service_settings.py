"""The service settings of `powersync:set` (memory, log-level, metrics, compact-schedule): values,
their fold into the state and the rendered config, and the host writes planned around a publish."""
import pytest

from powersync_plugin.core import config_render, decisions, service_settings
from powersync_plugin.core import events as ev
from powersync_plugin.core.errors import UsageProblem
from powersync_plugin.core.planner import Action, Kind, Plan
from powersync_plugin.core.projector import project
from powersync_plugin.core.state import InstanceState
from powersync_plugin.host_settings import HostObserved, extend, host_actions

MB = 1024 * 1024


def state(**fields) -> InstanceState:
    return InstanceState(**{"name": "ps", "created": True, "memory_mb": 400, **fields})


@pytest.mark.parametrize("key,value,canonical", [
    ("memory", "1g", "1024m"), ("memory", " 512M ", "512m"), ("log-level", "DEBUG", "debug"),
    ("metrics", "9464", "9464"), ("metrics", "OFF", "off"), ("compact-schedule", "0  3 * * *", "0 3 * * *"),
    ("compact-schedule", "@daily", "@daily"),
])
def test_values_are_canonical(key, value, canonical):
    assert service_settings.normalise(key, value) == canonical


@pytest.mark.parametrize("key,value", [
    ("memory", "64m"), ("memory", "lots"), ("log-level", "trace"), ("metrics", "80"), ("metrics", "8080"),
    ("metrics", "65535"), ("metrics", "-1"), ("compact-schedule", "daily"), ("compact-schedule", "* * *"),
    ("compact-schedule", "@every 5m"),
])
def test_bad_values_are_usage_problems(key, value):
    with pytest.raises(UsageProblem):
        service_settings.normalise(key, value)


def test_the_value_in_effect_again_decides_nothing():
    assert decisions.decide_setting(state(), "memory", "400m") == []
    assert decisions.decide_setting(state(), "log-level", "info") == []  # the service's default
    assert decisions.decide_setting(state(), "metrics", "off") == []
    [event] = decisions.decide_setting(state(), "memory", "1g")
    assert event.payload == {"key": "memory", "value": "1024m"}


def _events(*settings):
    created = ev.StoredEvent(1, "ps", 1, ev.INSTANCE_CREATED, 1, {
        "image": "i", "image_version": "1.25.0", "memory_mb": 400, "storage": "separate-database",
        "api_token": "t", "slot_prefix": "p_"}, "", "", "")
    stored = [created]
    for key, value in settings:
        version = len(stored) + 1
        stored.append(ev.StoredEvent(version, "ps", version, ev.SETTING_CHANGED, 1, {"key": key, "value": value}, "", "", ""))
    return stored


def test_settings_fold_and_a_failed_one_is_undone():
    stored = _events(("memory", "1024m"), ("metrics", "9464"), ("log-level", "debug"), ("compact-schedule", "@daily"))
    folded = project("ps", stored)
    assert (folded.memory_mb, folded.metrics_port, folded.log_level, folded.compact_schedule) == (1024, 9464, "debug", "@daily")
    failed = ev.StoredEvent(6, "ps", 6, ev.DEPLOY_FAILED, 1, {"cause": 3, "reason": "x", "restored": True}, "", "", "")
    assert project("ps", stored + [failed]).metrics_port is None
    off = project("ps", _events(("metrics", "9464"), ("metrics", "off")))
    assert off.metrics_port is None


def test_rendered_config_carries_level_and_port_beside_the_required_telemetry_flag():
    config = config_render.desired_config(state(metrics_port=9464, log_level="warn"))
    assert config["telemetry"] == {"disable_telemetry_sharing": False, "prometheus_port": 9464}
    assert config["system"] == {"logging": {"level": "warn"}}
    plain = config_render.desired_config(state())
    assert "telemetry" not in plain and "system" not in plain


def test_host_writes_precede_the_publish_and_restart_once():
    option = "-p 127.0.0.1:9464-9465:9464"
    wanted = state(memory_mb=512, metrics_port=9464)
    observed = HostObserved(memory_bytes=400 * MB, publish_options=("-p 127.0.0.1:9000-9001:9000",))
    assert [(a.kind, a.detail) for a in host_actions(wanted, observed)] == [
        (Kind.REMOVE_DOCKER_OPTION, "-p 127.0.0.1:9000-9001:9000"), (Kind.ADD_DOCKER_OPTION, option),
        (Kind.SET_MEMORY, "512m"),
    ]
    restarting = Plan((Action(Kind.SET_CONFIG, "ps", keys=("NODE_OPTIONS",), restarts=True),))
    assert extend(restarting, wanted, observed).restarts == 1
    assert extend(Plan(()), wanted, observed).actions[-1].kind is Kind.RESTART
    matching = HostObserved(memory_bytes=512 * MB, publish_options=(option,))
    assert extend(Plan(()), wanted, matching) == Plan(())


def test_only_the_plugins_own_publish_options_are_recognised():
    assert service_settings.is_metrics_publish_option(service_settings.metrics_publish_option(9464))
    assert not service_settings.is_metrics_publish_option("-p 127.0.0.1:9464:9464")
    assert not service_settings.is_metrics_publish_option("-p 127.0.0.1:9000-9010:9000")
