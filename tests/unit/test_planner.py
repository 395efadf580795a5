from powersync_plugin.core.planner import Kind, Observed, plan_publish

ENV = {"POWERSYNC_CONFIG_B64": "c2", "PS_SECRET_KEY_B64": "k"}


def kinds(plan):
    return [action.kind for action in plan.actions]


def test_first_deploy_sets_config_without_restart_then_deploys():
    plan = plan_publish("ps", ENV, "img:1", Observed(env={}, ports=(), deployed_image=None, running=False))
    assert kinds(plan) == [Kind.ADD_PORTS, Kind.SET_CONFIG, Kind.DEPLOY_IMAGE]
    assert plan.restarts == 1
    assert not plan.actions[1].restarts


def test_config_change_on_running_app_is_one_restarting_write():
    observed = Observed(env={**ENV, "POWERSYNC_CONFIG_B64": "c1"}, ports=("http:80:8080",), deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", observed)
    assert kinds(plan) == [Kind.SET_CONFIG]
    assert plan.actions[0].keys == ("POWERSYNC_CONFIG_B64",) and plan.restarts == 1


def test_rules_overrides_are_cleared_before_the_restarting_write():
    observed = Observed(env={**ENV, "POWERSYNC_CONFIG_B64": "c1", "POWERSYNC_SYNC_RULES_B64": "x"}, ports=("http:80:8080",), deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", observed)
    assert kinds(plan) == [Kind.UNSET_CONFIG, Kind.SET_CONFIG]
    assert not plan.actions[0].restarts and plan.restarts == 1


def test_nothing_changed_means_no_restart():
    observed = Observed(env=dict(ENV), ports=("http:80:8080",), deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", observed)
    assert plan.actions == () and plan.restarts == 0


def test_ports_cleared_by_domains_set_are_reasserted_without_restart():
    observed = Observed(env=dict(ENV), ports=(), deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", observed)
    assert kinds(plan) == [Kind.ADD_PORTS] and plan.restarts == 0


def test_other_mappings_are_kept_and_only_the_missing_one_is_added():
    # real-host finding 4: a certificate's https:443:8080 must survive a publish
    with_tls = Observed(env=dict(ENV), ports=("http:80:8080", "https:443:8080"), tls=True, deployed_image="img:1", running=True)
    assert plan_publish("ps", ENV, "img:1", with_tls).actions == ()
    extra = Observed(env=dict(ENV), ports=("http:8000:9000", "http:80:8080"), deployed_image="img:1", running=True)
    assert plan_publish("ps", ENV, "img:1", extra).actions == ()
    cleared = Observed(env=dict(ENV), ports=(), tls=True, deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", cleared)
    assert kinds(plan) == [Kind.ADD_PORTS] and plan.actions[0].detail == "http:80:8080 https:443:8080"
    elsewhere = Observed(env=dict(ENV), ports=("http:80:5000", "https:443:5000"), tls=True, deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:1", elsewhere)
    assert kinds(plan) == [Kind.REMOVE_PORTS, Kind.ADD_PORTS]
    assert (plan.actions[0].detail, plan.actions[1].detail) == ("http:80:5000", "http:80:8080")


def test_new_image_deploys_once():
    observed = Observed(env={**ENV, "POWERSYNC_CONFIG_B64": "old"}, ports=("http:80:8080",), deployed_image="img:1", running=True)
    plan = plan_publish("ps", ENV, "img:2", observed)
    assert kinds(plan) == [Kind.SET_CONFIG, Kind.DEPLOY_IMAGE] and plan.restarts == 1
    assert "Plan: 1 to change, 1 to restart." == plan.summary()
