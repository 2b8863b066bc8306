"""AstrocyteGatedMemory as a Brian2 object in the user's own network."""

import re

import numpy as np
import pytest

import astrogate as ag
from astrogate.errors import InputError
from astrogate.models.abstract import AstroGateModel, RunInputs
from astrogate.models.parameters import Parameters
from astrogate.models.patterns import flip_cue, random_patterns

pytestmark = pytest.mark.brian2

STEPS = 40  # 4 ms at dt = 0.1 ms: the gains commit and the state is well past the cue


def problem(seed, K=12, N=40, flip=0.2):
    rng = np.random.default_rng(seed)
    xi = random_patterns(K, N, rng)
    target = int(rng.integers(K))
    return xi, flip_cue(xi[target], flip, rng), target


def abstract_euler(xi, cue, params, steps=STEPS):
    """The abstract model's forward Euler for `steps` steps, written out from its right-hand side."""
    model = AstroGateModel(xi, params)
    u, a = model.initial_state(cue)
    for _ in range(steps):
        du, da = model.derivatives(u, a)
        u, a = u + model.params.dt * du, a + model.params.dt * da
    return model, u, a


def assert_state_matches(state, model, u, a, tol=1e-9):
    np.testing.assert_allclose(state["u"], u, rtol=0, atol=tol)
    np.testing.assert_allclose(state["a"], a, rtol=0, atol=tol * max(1.0, np.max(np.abs(a))))
    np.testing.assert_allclose(state["g"], model.gains(a), rtol=0, atol=tol)
    np.testing.assert_allclose(state["v"], model.rates(u), rtol=0, atol=tol)
    np.testing.assert_allclose(state["m"], model.overlaps(model.rates(u)), rtol=0, atol=tol)


def prefs_snapshot():
    from brian2 import prefs

    return {name: prefs[name] for name in prefs}


def test_two_memories_in_one_user_network_with_their_own_monitors():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.05 * b2.ms  # the user's clock; the memories keep their own dt
    before, device_before = prefs_snapshot(), b2.get_device()
    params = Parameters(tau_u=10 * b2.ms, tau_g=20 * b2.ms)
    assert params.tau_u == 10.0 and params.tau_g == 20.0
    first, second = problem(1), problem(2, K=8, N=30)
    mem1 = AstrocyteGatedMemory(first[0], params, name="left")
    mem2 = AstrocyteGatedMemory(second[0], params, name="right")
    assert prefs_snapshot() == before and b2.get_device() is device_before
    mem1.set_cue(first[1])
    mem2.set_cue(second[1])
    gains = b2.StateMonitor(mem1.astrocytes, "g", record=True)
    rates = b2.StateMonitor(mem2.neurons, "v", record=[0, 1])
    net = b2.Network(mem1)
    net.add(mem2, gains, rates)
    net.run(STEPS * params.dt * b2.ms)
    assert len(gains.t) == STEPS and len(rates.t) == STEPS  # every step of the memories' dt
    np.testing.assert_allclose(np.diff(gains.t / b2.ms), params.dt)
    for mem, (xi, cue, target) in ((mem1, first), (mem2, second)):
        model, u, a = abstract_euler(xi, cue, params)
        state = mem.state()
        assert_state_matches(state, model, u, a)
        assert int(np.argmax(state["m"])) == target and np.argmax(state["g"]) == target
    # the user's monitor saw the gains commit to the target
    assert gains.g[first[2], -1] > 0.9 > gains.g[first[2], 0]
    assert b2.defaultclock.dt == 0.05 * b2.ms


def test_building_keeps_the_users_preferences_and_device():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.core.default_float_dtype = np.float32
    b2.prefs.codegen.target = "numpy"
    before, device_before = prefs_snapshot(), b2.get_device()
    mem = AstrocyteGatedMemory(problem(12)[0], neuron="lif")
    mem.set_cue(problem(12)[1])
    assert prefs_snapshot() == before and b2.get_device() is device_before
    assert b2.prefs.core.default_float_dtype is np.float32 and mem.neurons.u[:].dtype == np.float32


def test_new_patterns_and_cues_without_rebuilding():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    xi, cue, _ = problem(3)
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(cue)
    net = b2.Network(mem)
    net.run(STEPS * params.dt * b2.ms)
    assert_state_matches(mem.state(), *abstract_euler(xi, cue, params))
    other, other_cue, target = problem(4)
    mem.set_patterns(other)
    mem.set_cue(other_cue)
    net.run(STEPS * params.dt * b2.ms)
    model, u, a = abstract_euler(other, other_cue, params)
    assert_state_matches(mem.state(), model, u, a)
    assert int(np.argmax(mem.state()["g"])) == target


def test_the_memory_is_one_brian2_object_that_contains_its_objects():
    """net.add(mem) adds one object, which contains the groups, synapses and operations (as a Synapses contains
    its pathways); a user's monitor of the hub's Lyapunov function sees it fall."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    xi, cue, _ = problem(5)
    mem = AstrocyteGatedMemory(xi, params)
    assert isinstance(mem, b2.BrianObject)
    mem.set_cue(cue)
    monitor = b2.StateMonitor(mem.hub, "L", record=0, when="end")
    net = b2.Network(monitor)
    net.add(mem)
    assert net.objects == {monitor, mem}
    contained = set(mem.contained_objects)
    assert set(mem.synapses.values()) <= contained and {mem.neurons, mem.astrocytes, mem.hub} <= contained
    assert all(obj.name.startswith(f"{mem.name}_") for obj in contained)
    net.run(2 * b2.ms)
    energy = monitor.L[0]
    assert len(energy) == 20 and np.all(np.diff(energy) <= 1e-9 * np.max(np.abs(energy)))
    model, u, a = abstract_euler(xi, cue, params, steps=20)
    assert_state_matches(mem.state(), model, u, a)


def test_magic_run_records_every_step_and_retrieves():
    """A script as Brian2's examples are written: no Network, no name=, quantities; run() finds the memory."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    xi, cue, target = problem(14)
    mem = AstrocyteGatedMemory(xi, tau_u=10 * b2.ms)
    mem.set_cue(cue)
    monitor = b2.StateMonitor(mem.astrocytes, "g", record=True)
    assert {mem, monitor} <= b2.collect()
    b2.run(STEPS * 0.1 * b2.ms)
    assert monitor.g.shape == (xi.shape[0], STEPS)  # every step recorded, from the memory's clock
    model, u, a = abstract_euler(xi, cue, Parameters())
    assert_state_matches(mem.state(), model, u, a)
    assert np.argmax(mem.state()["g"]) == target and monitor.g[target, -1] > 0.9 > monitor.g[target, 0]
    b2.run(STEPS * 0.1 * b2.ms)  # the magic network continues
    assert_state_matches(mem.state(), *abstract_euler(xi, cue, Parameters(), steps=2 * STEPS))


def test_magic_run_refuses_a_memory_without_a_state():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    mem = AstrocyteGatedMemory(problem(15)[0])
    with pytest.raises(Exception) as info:
        b2.run(1 * b2.ms)
    assert isinstance(info.value.__cause__, InputError), info.value
    assert f"{mem.name}: no initial state; call set_cue" in str(info.value.__cause__)


def test_store_restore_and_remove():
    """net.store()/restore() bring back the state, the time and the patterns; net.remove(mem) takes all of
    the memory's objects out of the network."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    xi, cue, _ = problem(16)
    other, other_cue, _ = problem(17)
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(cue)
    net = b2.Network(mem)
    net.store()
    net.run(STEPS * params.dt * b2.ms)
    after = mem.state()
    assert_state_matches(after, *abstract_euler(xi, cue, params))
    net.restore()
    assert net.t == 0 * b2.ms
    np.testing.assert_array_equal(mem.state()["u"], params.cue_scale * cue)
    net.run(STEPS * params.dt * b2.ms)  # the same run again, to the same numbers
    np.testing.assert_array_equal(mem.state()["u"], after["u"])
    net.store("trained")
    mem.set_patterns(other)
    mem.set_cue(other_cue)
    net.restore("trained")  # the patterns of the snapshot, in the synapses and in mem.patterns
    np.testing.assert_array_equal(mem.patterns, xi)
    np.testing.assert_array_equal(mem.network_patterns(), xi)
    np.testing.assert_array_equal(mem.state()["u"], after["u"])
    net.remove(mem)
    assert net.objects == set()
    net.run(1 * b2.ms)  # nothing left to run: the memory's state stays
    np.testing.assert_array_equal(mem.state()["u"], after["u"])


def test_two_unnamed_memories_get_unique_names_and_run_in_one_network():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    first, second = problem(18), problem(19, K=8, N=30)
    mem1 = AstrocyteGatedMemory(first[0], params)
    mem2 = AstrocyteGatedMemory(second[0], params)
    # Brian2's agm, agm_1, ...: the first free one (memories of earlier tests may still hold some; a fresh
    # Python gets agm and agm_1, test_a_users_script_written_as_brian2_examples_are)
    assert mem1.name != mem2.name and all(re.fullmatch(r"agm(_\d+)?", mem.name) for mem in (mem1, mem2))
    for mem in (mem1, mem2):
        assert all(obj.name.startswith(f"{mem.name}_") for obj in mem.contained_objects)
    mem1.set_cue(first[1])
    mem2.set_cue(second[1])
    net = b2.Network(mem1, mem2)
    net.run(STEPS * params.dt * b2.ms)
    for mem, (xi, cue, target) in ((mem1, first), (mem2, second)):
        assert_state_matches(mem.state(), *abstract_euler(xi, cue, params))


def test_a_users_script_written_as_brian2_examples_are(tmp_path):
    """`from brian2 import *`, magic run(), quantities everywhere, no name=: two memories, the user's monitors
    and input, in a fresh Python."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text("""
from brian2 import *
import numpy as np
import astrogate as ag

prefs.codegen.target = "numpy"
problem = ag.generated_problem(K=10, N=40, seed=1)
mem = ag.AstrocyteGatedMemory(problem.patterns, tau_u=10*ms, tau_g=20*ms, dt=0.1*ms, record_every=1*ms)
other = ag.AstrocyteGatedMemory(problem.patterns, tau_u=5*ms)
mem.set_cue(problem.cue)
other.set_cue(-problem.cue)
gains = StateMonitor(mem.astrocytes, "g", record=True)
spikes = PoissonGroup(5, rates=20*Hz)
kick = Synapses(spikes, mem.neurons, on_pre="u_post += 0.0")
kick.connect(p=0.5)
run(20*ms)
state = mem.state()
print(mem.name, other.name, gains.g.shape, int(state["g"].argmax()) == problem.target,
      len(mem.monitors["astrocytes"].t), int(other.state()["g"].argmax()) == problem.target)
""")
    # Brian2 reads a brian_preferences file in the working folder: no debug logs or script copies in /tmp
    (tmp_path / "brian_preferences").write_text("logging.file_log = False\nlogging.save_script = False\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["agm", "agm_1", "(10,", "200)", "True", "20", "True"], proc.stdout


def test_a_timed_array_input_drives_the_neurons():
    """I_ext is the user's input: a TimedArray cue current, the abstract model's current I(t)."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    xi, cue, target = problem(6)
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(np.zeros(xi.shape[1]))  # start from rest; the cue comes as a current for 1 ms
    stimulus = b2.TimedArray(np.vstack([cue, np.zeros_like(cue)]), dt=1 * b2.ms)
    mem.neurons.run_regularly("I_ext = stimulus(t, i)", when="before_groups")
    net = b2.Network(mem)
    net.run(STEPS * params.dt * b2.ms, namespace={"stimulus": stimulus})
    model = AstroGateModel(xi, params)
    traj = model.run(np.zeros_like(cue), duration=STEPS * params.dt, tol=0, inputs=RunInputs(current=cue, t_current=1.0))
    np.testing.assert_allclose(mem.state()["u"], traj.u, atol=1e-9, rtol=0)
    assert int(np.argmax(mem.state()["m"])) == target


def test_user_monitors_at_the_steps_end_record_the_derived_values_at_their_time():
    """The docstring's recipe: g, m, v recorded with when="end" are softmax(a), xi v / N, tanh(gamma u) of the
    state recorded in the default slot at the same time; recorded in the default slot they are one step late."""
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    params = Parameters()
    xi, cue, _ = problem(13)
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(cue)
    logits = b2.StateMonitor(mem.astrocytes, "a", record=True)
    membranes = b2.StateMonitor(mem.neurons, "u", record=True)
    derived = b2.StateMonitor(mem.astrocytes, ["g", "m"], record=True, when="end")
    rates = b2.StateMonitor(mem.neurons, "v", record=True, when="end")
    late = b2.StateMonitor(mem.astrocytes, "g", record=True)
    b2.Network(mem, logits, membranes, derived, rates, late).run(STEPS * params.dt * b2.ms)
    model = AstroGateModel(xi, params)
    np.testing.assert_allclose(derived.g.T, model.gains(logits.a.T), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rates.v.T, model.rates(membranes.u.T), rtol=0, atol=1e-12)
    np.testing.assert_allclose(derived.m.T, model.overlaps(model.rates(membranes.u.T)), rtol=0, atol=1e-12)
    assert np.ptp(derived.g[:, -1]) > 0.5  # the gains moved: the comparison below is not of constants
    np.testing.assert_allclose(late.g[:, 1:], derived.g[:, :-1], rtol=0, atol=1e-12)
    assert np.all(late.g[:, 0] == 0)


def test_spiking_options_take_quantities():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    xi, cue, _ = problem(7)
    mem = AstrocyteGatedMemory(xi, neuron="poisson", nu_max=100 * b2.Hz, tau_r=15 * b2.ms, name="spiky")
    assert mem.spiking.nu_max == 100.0 and mem.spiking.tau_r == 15.0
    assert mem.neurons.name == "spiky_neurons" and mem.astrocytes.name == "spiky_astrocytes"


@pytest.mark.parametrize("kwargs, message", [
    (dict(tau_u=10 * 1e-3, dt=1e-3), None),  # a plain number is ms: accepted (with a dt below it)
    (dict(name="two words"), "name must be a Python identifier"),
    (dict(neuron="izhikevich"), "unknown neuron model"),
    (dict(gating="sparse"), "unknown gating"),
    (dict(method="rk4"), "unknown method"),
    (dict(nu_max=100.0), "need spiking neurons"),
    (dict(neuron="lif", colour="red"), "unknown option"),
    (dict(tau_u="slow"), "tau_u must be a finite number"),
])
def test_bad_options_are_one_line_errors(kwargs, message):
    from astrogate.network.memory import AstrocyteGatedMemory

    xi, _, _ = problem(8)
    if message is None:
        AstrocyteGatedMemory(xi, **kwargs)
        return
    with pytest.raises(InputError, match=message):
        AstrocyteGatedMemory(xi, **kwargs)


def test_quantity_of_the_wrong_dimension_is_refused():
    import brian2 as b2

    with pytest.raises(InputError, match="tau_u must be in units of"):
        Parameters(tau_u=10 * b2.mV)


def test_running_without_a_state_says_what_to_do():
    import brian2 as b2

    from astrogate.network.memory import AstrocyteGatedMemory

    b2.prefs.codegen.target = "numpy"
    xi, _, _ = problem(9)
    mem = AstrocyteGatedMemory(xi)
    # Brian2 wraps errors of before_run in its BrianObjectException, raised from ours
    with pytest.raises(Exception) as info:
        b2.Network(mem).run(1 * b2.ms)
    assert isinstance(info.value.__cause__, InputError), info.value
    assert f"{mem.name}: no initial state; call set_cue" in str(info.value.__cause__)


@pytest.mark.compile
def test_cpp_standalone_memory_matches_abstract_euler_with_run_args(tmp_path):
    """Build once on cpp_standalone, re-run with run_args (new patterns and cue), state() against the abstract
    model's forward Euler after each run."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    params = Parameters()
    devices.activate(devices.DeviceChoice("cpp_standalone", build_root=tmp_path), params.dt)
    xi, cue, _ = problem(10)
    mem = AstrocyteGatedMemory(xi, params)
    mem.set_cue(cue)
    net = b2.Network(mem)
    net.run(STEPS * params.dt * b2.ms)
    b2.device.build(directory=str(tmp_path / "project"), compile=True, run=False, with_output=False)
    b2.device.run(directory=str(tmp_path / "project"), with_output=False, results_directory="first")
    assert_state_matches(mem.state(), *abstract_euler(xi, cue, params))
    other, other_cue, _ = problem(11)
    other_params = params.updated(gamma=1.5 * params.gamma)
    state = mem.state_values(other, other_params.cue_scale * other_cue, params=other_params)
    b2.device.run(directory=str(tmp_path / "project"), with_output=False, results_directory="second",
                  run_args=mem.run_args(state))
    # state() reads v and m with the gain and patterns of this run, not those the memory was made with
    assert np.array_equal(mem.network_patterns(), other)
    assert_state_matches(mem.state(), *abstract_euler(other, other_cue, other_params))


@pytest.mark.compile
def test_cpp_standalone_magic_run_of_a_rate_and_a_spiking_memory(tmp_path):
    """Magic run() on cpp_standalone, two unnamed memories in one project: the rate one equals the abstract
    model's Euler steps; the spiking one, whose event readout has a spike pathway inside the memory, compiles
    (the device declares the pathway's spike queue) and spikes."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    params = Parameters()
    build = devices.activate(devices.DeviceChoice("cpp_standalone", build_root=tmp_path), params.dt)
    xi, cue, _ = problem(20, K=5, N=20)
    rate = AstrocyteGatedMemory(xi)
    spiking = AstrocyteGatedMemory(xi, neuron="poisson", readout="event", record_every=1 * b2.ms)
    rate.set_cue(cue)
    spiking.set_cue(cue)
    gains = b2.StateMonitor(rate.astrocytes, "g", record=True)
    b2.run(1 * b2.ms)
    b2.run(1 * b2.ms)
    b2.device.build(directory=str(build), compile=True, run=True, with_output=False)
    assert_state_matches(rate.state(), *abstract_euler(xi, cue, params, steps=20))
    assert gains.g.shape == (5, 20) and rate.name != spiking.name
    assert spiking.monitors["spike_counts"].count[:].sum() > 0


@pytest.mark.compile
def test_cpp_standalone_network_of_a_memory_with_a_spike_pathway_inside(tmp_path):
    """Network(mem): the memory is the network's only top-level object, so the device learns of its Synapses
    from the memory's before_run (without it the spike queue of the event readout is undeclared and the
    project does not compile)."""
    import brian2 as b2

    from astrogate.network import devices
    from astrogate.network.memory import AstrocyteGatedMemory

    build = devices.activate(devices.DeviceChoice("cpp_standalone", build_root=tmp_path), 0.1)
    xi, cue, _ = problem(21, K=5, N=20)
    mem = AstrocyteGatedMemory(xi, neuron="poisson", readout="event", record_every=1 * b2.ms)
    mem.set_cue(cue)
    net = b2.Network(mem)
    assert net.objects == {mem}
    net.run(2 * b2.ms)
    b2.device.build(directory=str(build), compile=True, run=True, with_output=False)
    assert mem.monitors["spike_counts"].count[:].sum() > 0
    assert len(mem.monitors["astrocytes"].t) == 2


def test_network_settings_are_one_object_checked_once_and_keywords_change_it():
    patterns = ag.generated_problem(K=3, N=10).patterns
    settings = ag.NetworkSettings(gating="dense", record_every=0.5)
    mem = ag.AstrocyteGatedMemory(patterns, ag.Parameters(), settings, energy=False, name="settings_check")
    assert (mem.gating, mem.record_every) == ("dense", 0.5) and mem.monitors
    assert not any("energy" in name for name in mem.synapses)
    with pytest.raises(ag.InputError, match="unknown gating 'sparse'"):
        ag.NetworkSettings(gating="sparse")
    with pytest.raises(ag.InputError, match="unknown network setting.*: colour"):
        settings.changed(colour="red")
    with pytest.raises(ag.InputError, match="settings must be a NetworkSettings"):
        ag.AstrocyteGatedMemory(patterns, None, {"gating": "dense"})
    session = ag.Brian2Session("runtime", "numpy", settings=settings, gating="factorised")
    assert (session.gating, session.record_every) == ("factorised", 0.5)
