"""``robot-brain bench``: how much of the 1 kHz budget the stack uses, measured in one run.

Three measurements on the arm in the maze world (the task with contacts), all timed per call
with ``time.perf_counter_ns`` after a warm-up, so ratios compare like with like:

- fast tick: :meth:`TwoRateLoop.tick` of a running loop driven by the scripted policy
  (read + interpolator + limits reflex + impedance controller + torque limiter + physics step);
- ``mj_step``: MuJoCo's raw physics step from the same states as the ticks (copies taken
  during the run), the floor the stack is compared to; for context also from a contact-free
  rest pose;
- env steps/s: slow ticks (``env.step``: 50 fast ticks at 1 kHz / 20 Hz, policy included);
- with a safety critic (the one shipped for the task, or ``--critic DIR``): one critic
  evaluation (contact memory + features + both heads) and the fast tick with the critic over the
  hard limits, against ``mj_step`` of the same states;
- env steps/s of ``--n-envs`` environments in worker processes (``SubprocVecEnv``, as
  ``robot-brain train --n-envs`` runs them).

Targets on a 2-core machine: fast tick <= 4x ``mj_step`` (median), >= 400 env steps/s (issue 2);
critic evaluation <= 15 us (median), fast tick with the critic <= 5x ``mj_step`` (issue 3).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._common import CliError, output_path, positive_float, positive_int

if TYPE_CHECKING:
    import gymnasium as gym
    import mujoco
    import numpy as np

    from robot_brain.envs import ImpedanceTaskEnv
    from robot_brain.hardware.dynamixel.virtual import Faults
    from robot_brain.policies import Policy

NAME = "bench"
HELP = "time mj_step, the fast tick and env steps/s against the targets"
DESCRIPTION = """Time the control stack on this machine: raw mj_step of the arm in the maze world,
one fast tick of the running two-rate loop (interpolator + limits reflex + impedance controller +
torque limits + step; median and p99) and its ratio to mj_step, and env steps per second at
1 kHz control / 20 Hz policy. Prints the targets with pass/fail. Numbers vary with machine load;
the ratios are measured in the same run.

examples:
  robot-brain bench
  robot-brain bench --seconds 10 --json out/bench.json
"""

TICK_RATIO_TARGET = 4.0  # fast tick median <= 4x raw mj_step
STEPS_PER_S_TARGET = 400.0  # env steps per second at 1 kHz control, 20 Hz policy
CRITIC_US_TARGET = 15.0  # one critic evaluation, median
CRITIC_TICK_RATIO_TARGET = 5.0  # fast tick with the critic, median, vs raw mj_step


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=positive_float, default=None, metavar="S",
                   help="rough total measuring time, split over the three measurements "
                        "(default: 6); with --ros2, the time per rate (default: 60)")
    p.add_argument("--ros2", action="store_true",
                   help="instead: the state-to-torque round trip over DDS on loopback "
                        "(sim-robot and deploy in two processes) at each of --rates")
    p.add_argument("--rates", type=positive_float, nargs="+", default=[500.0, 1000.0], metavar="HZ",
                   help="control rates of --ros2 (default: 500 1000)")
    p.add_argument("--realtime-priority", type=int, default=0, metavar="P",
                   help="with --ros2: run both processes at SCHED_FIFO priority P (1-99, the robot "
                        "config's realtime_priority; default 0: normal scheduling)")
    p.add_argument("--serial", action="store_true",
                   help="instead: one Dynamixel bus tick (sync read of 6 servos + sync write) and the "
                        "control loop's fast tick on that bus (the 6-joint servo arm's joint impedance), "
                        "against the virtual servo chain on a pty, without and with 5%% corrupted replies")
    p.add_argument("--task", default="maze", metavar="TASK",
                   help="world to measure in (default: maze)")
    p.add_argument("--critic", type=Path, default=None, metavar="DIR",
                   help="safety critic to time (default: the one shipped for the task; "
                        "critic rows are left out when there is none)")
    p.add_argument("--n-envs", type=positive_int, default=2, metavar="K",
                   help="worker processes for the vectorised throughput row (default: 2; "
                        "1 skips it)")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write the results to FILE (atomically)")


def _percentiles(ns: Sequence[int]) -> dict[str, float]:
    import numpy as np

    us = np.asarray(ns, dtype=np.float64) / 1e3
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "calls": int(us.size)}


def _time_mj_step_at_rest(model: mujoco.MjModel, q0: np.ndarray, seconds: float) -> dict[str, float]:
    """Raw ``mj_step`` of the arm near ``q0`` with its gravity torques applied (free of
    contacts), restarted every 500 steps: context for the same-state number."""
    import mujoco

    d = mujoco.MjData(model)
    n = len(q0)

    def restart() -> None:
        mujoco.mj_resetData(model, d)
        d.qpos[:n] = q0
        mujoco.mj_forward(model, d)
        d.ctrl[:n] = d.qfrc_bias[:n]

    restart()
    for _ in range(500):  # warm-up
        mujoco.mj_step(model, d)
    times: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 2000:
        restart()
        for _ in range(500):
            t0 = clock()
            mujoco.mj_step(model, d)
            times.append(clock() - t0)
    return _percentiles(times)


def _time_loop(env: gym.Env, policy: Policy, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Time every :meth:`TwoRateLoop.tick` of a loop the policy drives through ``env.step``
    (the slow-tick work between ticks is not timed), and raw ``mj_step`` on the same states.

    After every ``SAMPLE``-th tick the simulator's state is copied into a scratch ``MjData``,
    stepped once untimed (warm buffers), and the next ``mj_step`` of that copy is timed, so both
    measurements see the same postures, contacts and torques (the maze walls and table make a
    step dearer than free motion far from them).
    """
    import mujoco

    task = cast("ImpedanceTaskEnv", env.unwrapped)
    assert task.sim is not None  # the benchmark runs the simulated arm
    loop, model, data = task.loop, task.model, task.sim.data
    scratch = mujoco.MjData(model)
    ticks: list[int] = []
    steps: list[int] = []
    clock = time.perf_counter_ns
    tick = loop.tick  # the bound method; the instance attribute below shadows it while timing
    sample = 3

    def timed_tick() -> None:
        t0 = clock()
        tick()
        t1 = clock()
        ticks.append(t1 - t0)
        if len(ticks) % sample == 0:
            mujoco.mj_copyData(scratch, model, data)
            # One untimed step first: the first step after a copy runs on cold buffers (~2 us
            # slower here), which would flatter the tick/mj_step ratio.
            mujoco.mj_step(model, scratch)
            t0 = clock()
            mujoco.mj_step(model, scratch)
            steps.append(clock() - t0)

    obs, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(20):  # warm-up (compiled kernels, caches)
        obs, *_ = env.step(policy.act(obs))
    loop.tick = timed_tick  # type: ignore[method-assign]  # shadow the method while timing
    try:
        deadline = time.perf_counter() + seconds
        seed = 1
        while time.perf_counter() < deadline or len(steps) < 2000:
            obs, _, term, trunc, _ = env.step(policy.act(obs))
            if term or trunc:
                obs, _ = env.reset(seed=seed)
                policy.reset()
                seed += 1
    finally:
        del loop.tick
    return _percentiles(steps), _percentiles(ticks)


def _env_steps(env: gym.Env, policy: Policy, seconds: float) -> dict[str, float]:
    """Env steps per wall-clock second (policy, action mapping, loop and bookkeeping; resets
    at episode ends are counted in the time)."""
    obs, _ = env.reset(seed=100)
    policy.reset()
    for _ in range(10):
        obs, *_ = env.step(policy.act(obs))
    steps, seed = 0, 101
    t0 = time.perf_counter()
    while True:
        obs, _, term, trunc, _ = env.step(policy.act(obs))
        steps += 1
        if term or trunc:
            obs, _ = env.reset(seed=seed)
            policy.reset()
            seed += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= 100:
            break
    return {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed,
            "episodes": seed - 100}


def _vec_env_steps(task: str, n_envs: int, seconds: float) -> dict[str, float]:
    """Env steps per second (all workers together) of ``n_envs`` copies in worker processes,
    driven by uniform random actions (the policy's cost is not what is measured)."""
    import numpy as np

    from robot_brain.training.run import make_vec_env

    venv = make_vec_env(task, {}, "limits", n_envs=n_envs, seed=0)  # as `train --n-envs` does
    try:
        rng = np.random.default_rng(0)
        shape = (n_envs, *cast("gym.spaces.Box", venv.action_space).shape)
        venv.reset()
        for _ in range(5):
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
        steps, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or steps < 100:
            venv.step(rng.uniform(-1, 1, shape).astype(np.float32))
            steps += n_envs
    finally:
        venv.close()
    return {"n_envs": n_envs, "steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}


def _time_critic(critic_dir: Path, seconds: float) -> dict[str, float]:
    """One critic evaluation (contact-memory update + features + both heads, one compiled call)
    on maze-like states: 64 random tool states near the table, each with a random contact force,
    cycled; every call timed after a warm-up."""
    import numpy as np

    from robot_brain.controllers import Command, RobotState
    from robot_brain.safety import ContactMemory, load_critic

    model = load_critic(critic_dir)
    mem = ContactMemory()
    rng = np.random.default_rng(0)
    states = [RobotState(0.0, np.zeros(7), np.zeros(7), np.zeros(7),
                         rng.uniform([0.35, -0.17, 0.26], [0.63, 0.17, 0.27]),
                         np.array([0.0, 1, 0, 0]), np.r_[rng.normal(0, 0.1, 3), np.zeros(3)],
                         np.r_[rng.normal(0, 5, 3), np.zeros(3)]) for _ in range(64)]
    sp = Command.cartesian((0.5, 0.0, 0.265), (0.0, 1, 0, 0), (700, 700, 1500, 60, 60, 60))
    for s in states:  # warm-up
        mem.update(s)
        model.risk(s, sp, mem.state)
    clock = time.perf_counter_ns
    times: list[int] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(times) < 5000:
        s = states[i % 64]
        t0 = clock()
        mem.update(s)
        model.risk(s, sp, mem.state)
        times.append(clock() - t0)
        i += 1
    return _percentiles(times)


def _critic_rows(env: Any, policy: Any, critic_dir: Path, seconds: float) -> dict[str, Any]:
    """Critic evaluation cost and the fast tick with the critic over the hard limits."""
    try:
        env.unwrapped.set_shield(str(critic_dir))
    except ValueError as exc:
        raise CliError(f"argument --critic: {exc}") from None
    mj, tick = _time_loop(env, policy, 0.8 * seconds)
    return {"dir": str(critic_dir), "evaluation": _time_critic(critic_dir, 0.2 * seconds),
            "mj_step": mj, "fast_tick": tick, "fast_tick_ratio": tick["median_us"] / mj["median_us"]}


def measure(task_name: str, seconds: float, critic: Path | None = None,
            n_envs: int = 2) -> dict[str, Any]:
    """All measurements; returns the results dict that ``--json`` writes."""
    from robot_brain.envs import make
    from robot_brain.policies import make_policy

    from .sim import resolve

    spec = resolve(task_name)
    env = make(spec.name)
    try:
        task = cast("ImpedanceTaskEnv", env.unwrapped)
        try:
            policy = make_policy("scripted", env, seed=0)
            policy_name = "scripted"
        except ValueError:
            policy, policy_name = make_policy("zero", env, seed=0), "zero"
        rest = _time_mj_step_at_rest(task.model, task.home_q, 0.1 * seconds)
        mj, tick = _time_loop(env, policy, 0.5 * seconds)
        steps = _env_steps(env, policy, 0.4 * seconds)
        cfg = task.loop_config
        if critic is None:
            from .demo import shipped_critic

            critic = shipped_critic(spec.name)
        critic_res = _critic_rows(env, policy, critic, 0.5 * seconds) if critic else None
    finally:
        env.close()
    vec = _vec_env_steps(spec.name, n_envs, 0.4 * seconds) if n_envs > 1 else None
    ratio = tick["median_us"] / mj["median_us"]
    return {
        "critic": critic_res, "vec_env": vec,
        "task": spec.name, "policy": policy_name, "control_hz": cfg.control_hz,
        "policy_hz": cfg.policy_hz, "machine": f"{platform.machine()}, {platform.python_version()}",
        "mj_step": mj, "mj_step_at_rest": rest, "fast_tick": tick,
        "fast_tick_ratio": ratio, "fast_tick_p99_ratio": tick["p99_us"] / mj["median_us"],
        "env_steps": steps,
        "targets": {
            "fast_tick_ratio_max": TICK_RATIO_TARGET, "env_steps_per_s_min": STEPS_PER_S_TARGET,
            "fast_tick_ratio_pass": ratio <= TICK_RATIO_TARGET,
            "env_steps_per_s_pass": steps["steps_per_s"] >= STEPS_PER_S_TARGET,
        },
    }


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._common import console, save_results

    if args.ros2:
        return _run_ros2(args)
    if args.serial:
        return _run_serial(args)
    if args.critic is not None and not args.critic.is_dir():
        raise CliError(f"argument --critic: {str(args.critic)!r} is not a critic directory")
    res = measure(args.task, args.seconds or 6.0, args.critic, args.n_envs)
    mj, tick, st, tg = res["mj_step"], res["fast_tick"], res["env_steps"], res["targets"]

    def verdict(ok: bool) -> str:
        return "[green]pass[/]" if ok else "[red]FAIL[/]"

    t = Table(title=f"bench: {res['task']} world, {res['policy']} policy, "
                    f"{res['control_hz']:g} Hz control / {res['policy_hz']:g} Hz policy",
              title_justify="left")
    for col in ("measurement", "median", "p99", "vs mj_step", "target", "result"):
        t.add_column(col, justify="left" if col in ("measurement", "target") else "right")
    rest = res["mj_step_at_rest"]
    t.add_row("raw mj_step, same states as the ticks", f"{mj['median_us']:.1f} us",
              f"{mj['p99_us']:.1f} us", "1.00x", "", "")
    t.add_row("raw mj_step, arm at rest (no contact)", f"{rest['median_us']:.1f} us",
              f"{rest['p99_us']:.1f} us", f"{rest['median_us'] / mj['median_us']:.2f}x", "", "")
    t.add_row("fast tick (interp + reflex + controller + limits + step)",
              f"{tick['median_us']:.1f} us", f"{tick['p99_us']:.1f} us",
              f"{res['fast_tick_ratio']:.2f}x (p99 {res['fast_tick_p99_ratio']:.2f}x)",
              f"median <= {TICK_RATIO_TARGET:g}x mj_step", verdict(tg["fast_tick_ratio_pass"]))
    t.add_row("env steps (slow ticks, 50 fast ticks each)", f"{st['steps_per_s']:.0f} /s", "", "",
              f">= {STEPS_PER_S_TARGET:g} /s", verdict(tg["env_steps_per_s_pass"]))
    crit = res["critic"]
    if crit is not None:
        ev = crit["evaluation"]
        t.add_row("critic evaluation (memory + features + twin heads)",
                  f"{ev['median_us']:.1f} us", f"{ev['p99_us']:.1f} us", "",
                  f"median <= {CRITIC_US_TARGET:g} us", verdict(ev["median_us"] <= CRITIC_US_TARGET))
        ct, cm = crit["fast_tick"], crit["mj_step"]
        t.add_row("fast tick with the critic over the hard limits", f"{ct['median_us']:.1f} us",
                  f"{ct['p99_us']:.1f} us",
                  f"{crit['fast_tick_ratio']:.2f}x (mj_step {cm['median_us']:.1f} us)",
                  f"median <= {CRITIC_TICK_RATIO_TARGET:g}x mj_step",
                  verdict(crit["fast_tick_ratio"] <= CRITIC_TICK_RATIO_TARGET))
    vec = res["vec_env"]
    if vec is not None:
        t.add_row(f"env steps, {vec['n_envs']} envs in worker processes (random actions)",
                  f"{vec['steps_per_s']:.0f} /s", "", "", "", "")
    con = console()
    con.print(t)
    con.print(f"{mj['calls']} mj_step calls, {tick['calls']} fast ticks, {st['steps']} env "
                  f"steps in {st['seconds']:.1f} s; real-time factor "
                  f"{st['steps_per_s'] / res['policy_hz']:.1f}x")
    if args.json is not None:
        save_results(args.json, res)
        con.print(f"results: {args.json}")
    return 0


def _run_ros2(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ._common import console, save_results
    from .bench_ros2 import measure_round_trip

    for hz in args.rates:
        if 1000.0 % hz > 1e-9 or hz > 1000.0:
            raise CliError(f"argument --rates: {hz:g} Hz is not a whole number of 1 ms physics steps")
    from robot_brain.hardware.ros2.config import RobotConfig

    try:  # the robot config's own bounds, which deploy and sim-robot will check again
        RobotConfig(realtime_priority=args.realtime_priority)
    except ValueError as exc:
        raise CliError(f"argument --realtime-priority: {exc}") from None
    seconds = args.seconds or 60.0
    con = console()
    rt = f", SCHED_FIFO priority {args.realtime_priority}" if args.realtime_priority else ""
    con.print(f"bench --ros2: {seconds:g} s per rate at {', '.join(f'{r:g}' for r in args.rates)} Hz "
              f"(sim-robot + deploy over DDS on loopback{rt}) ...", markup=False)
    results = measure_round_trip(args.rates, seconds, args.realtime_priority)
    for r in results:
        for line in r["realtime_refused"]:
            con.print(line, markup=False)
    t = Table(title="state-to-torque round trip over DDS (loopback, two processes)", title_justify="left")
    for col in ("rate", "answers", "median", "p99", "max", "late (> 1 period)", "stale answers",
                "brain: states missed", "brain: holds", "brain: state->command", "target", "result"):
        t.add_column(col, justify="right")
    for r in results:
        rt, brain = r["round_trip"], r["brain"]
        holds = sum(v for k, v in r["brain_events"].items()
                    if k in ("stale_state", "read_error", "nonfinite_state"))
        ok = rt["stale_answers"] == 0 and (r["control_hz"] < 1000 or rt["p99_us"] < 1000.0)
        target = "p99 < 1 ms, no stale" if r["control_hz"] >= 1000 else "no stale"
        t.add_row(f"{r['control_hz']:g} Hz", str(rt["answers"]), f"{rt['median_us']:.0f} us",
                  f"{rt['p99_us']:.0f} us", f"{rt['max_us']:.0f} us",
                  f"{rt['late']} ({100 * rt['late'] / max(rt['answers'], 1):.2f} %)",
                  str(rt["stale_answers"]), str(brain["deadline_misses"]), str(holds),
                  f"{brain['brain_latency_us']['median']:.0f} / {brain['brain_latency_us']['p99']:.0f} us",
                  target, "[green]pass[/]" if ok else "[red]FAIL[/]")
    con.print(t)
    if args.json is not None:
        con.print(f"results: {save_results(args.json, {'ros2_round_trip': results})}")
    return 0


SERIAL_LOOP_HZ = 500.0  # control rate of the serial loop (the bar; 200 Hz is the minimum)
SERIAL_RATE_TARGET = 500.0  # achieved fast ticks per second on the bus
SERIAL_HOLD_STIFFNESS = 10.0  # N m/rad, joint-space hold of the servo arm


def measure_serial_loop(seconds: float, faults: Faults | None = None, control_hz: float = SERIAL_LOOP_HZ,
                        control_mode: str = "current") -> dict[str, Any]:
    """Time every fast tick of :class:`TwoRateLoop` driving :class:`DynamixelBackend` on a
    :class:`VirtualServoChain` of 6 servos behind a pty (one sync read + controller + limits +
    one sync write per tick), the servo arm's joint impedance holding its start posture, with
    the default :class:`SimClock` (no pacing: as fast as the bus answers).

    The chain's physics is six independent joints (inertia, friction, no gravity), not the
    servo arm whose model the controller uses; its gravity compensation therefore pushes the
    chain's pitch joints a few hundredths of a radian off the hold. This measures the loop's
    cost on the bus, not the fidelity of the physics.

    Returns per-tick time (median, p99, max) [ms], the achieved rate (ticks / wall time of the
    stepping, slow ticks included) [Hz], read errors and the held ticks they caused (and their
    onset events), and the torque-limit events (onsets).
    """
    import mujoco
    import numpy as np

    from robot_brain.controllers import Command, JointImpedance, RobotModel, TorqueLimiter
    from robot_brain.envs import servo_arm
    from robot_brain.hardware.dynamixel.backend import DynamixelBackend
    from robot_brain.hardware.dynamixel.bench import BENCH_MODELS
    from robot_brain.hardware.dynamixel.bus import DynamixelBus
    from robot_brain.hardware.dynamixel.calibration import Calibration
    from robot_brain.hardware.dynamixel.control_table import XM430_W350
    from robot_brain.hardware.dynamixel.virtual import Faults, VirtualServoChain
    from robot_brain.runtime import LoopConfig, TwoRateLoop

    ids = list(range(1, 7))
    dt = 1.0 / control_hz
    kt = XM430_W350.torque_constant
    assert kt is not None
    model = mujoco.MjModel.from_xml_string(servo_arm.build_mjcf())
    ticks: list[int] = []
    clock = time.perf_counter_ns
    # The faults are on only while timing: configure/reset and the confirmed writes of the
    # deactivation raise on a failed transaction, by design.
    model_number = BENCH_MODELS[control_mode]  # current: XM430-W350; position: XL430-W250
    with VirtualServoChain(ids, model_number, faults=Faults(seed=faults.seed if faults else 0),
                           initial_positions=servo_arm.HOME_Q) as chain:
        backend = DynamixelBackend(DynamixelBus(chain.path), Calibration.default(ids, model_number),
                                   control_dt=dt, max_current=float(servo_arm.TAU_MAX.min()) / kt,
                                   control_mode=control_mode)
        backend.configure()
        try:
            loop = TwoRateLoop(backend, JointImpedance(RobotModel(model, servo_arm.EE_SITE, 6)),
                               TorqueLimiter(servo_arm.TAU_MAX, servo_arm.TAU_RATE_MAX, dt),
                               config=LoopConfig(policy_hz=20, control_hz=control_hz))
            state = loop.reset(Command.joint(backend.read().q.copy(), stiffness=SERIAL_HOLD_STIFFNESS))
            hold = Command.joint(state.q.copy(), stiffness=SERIAL_HOLD_STIFFNESS)
            for _ in range(4):  # warm-up: caches, the bus's buffers
                loop.step(hold)
            tick = loop.tick

            def timed_tick() -> None:
                t0 = clock()
                tick()
                ticks.append(clock() - t0)

            loop.tick = timed_tick  # type: ignore[method-assign]  # shadow the method while timing
            loop.events.clear()
            if faults is not None:
                chain.faults = faults
            errors0, holds0 = backend.read_errors, backend.holds
            held = 0
            t_start = time.perf_counter()
            try:
                while (elapsed := time.perf_counter() - t_start) < seconds:
                    held += loop.step(hold).held_ticks
            finally:
                del loop.tick
                chain.faults = Faults()
            events, engaged = loop.events.counts(), loop.events.ticks  # onsets, ticks engaged
            read_errors, holds = backend.read_errors - errors0, backend.holds - holds0
            backend.deactivate()
        finally:
            backend.disconnect()
    ms = np.asarray(ticks, dtype=np.float64) / 1e6
    return {
        "n_servos": len(ids), "control_hz": control_hz, "ticks": int(ms.size), "seconds": elapsed,
        "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()), "rate_hz": ms.size / elapsed,
        "read_errors": read_errors, "read_error_holds": int(engaged["read_error"]),
        "read_error_events": int(events["read_error"]), "held_ticks": held, "holds": holds,
        "torque_limit_events": int(events["torque_limit"] + events["torque_rate"]),
    }


def _run_serial(args: argparse.Namespace) -> int:
    from rich.table import Table

    from robot_brain.hardware.dynamixel.bench import measure_round_trip
    from robot_brain.hardware.dynamixel.virtual import Faults

    from ._common import console, save_results

    seconds = args.seconds or 5.0
    con = console()
    rows = [("no faults", measure_round_trip(6, seconds)),
            ("5 % corrupted + 1 % dropped replies",
             measure_round_trip(6, seconds, faults=Faults(corrupt_rate=0.05, drop_rate=0.01, seed=0))),
            ("position mode (XL430), no faults", measure_round_trip(6, seconds, mode="position"))]
    t = Table(title="Dynamixel bus tick: sync read (6 servos) + sync write, virtual chain on a pty",
              title_justify="left")
    for col in ("faults", "ticks", "median", "p99", "max", "rate", "retries", "failed ticks"):
        t.add_column(col, justify="right")
    for name, r in rows:  # the bus alone: context for the loop below, which has the target
        t.add_row(name, str(r["ticks"]), f"{r['median_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms",
                  f"{r['max_ms']:.1f} ms", f"{r['rate_hz']:.0f} Hz", str(r["retries"]), str(r["bus_errors"]))
    con.print(t)
    loops = [("no faults", measure_serial_loop(seconds)),
             ("5 % corrupted replies", measure_serial_loop(seconds, Faults(corrupt_rate=0.05, seed=0))),
             ("position mode (XL430), no faults", measure_serial_loop(seconds, control_mode="position")),
             ("position mode (XL430), 5 % corrupted",
              measure_serial_loop(seconds, Faults(corrupt_rate=0.05, seed=0), control_mode="position"))]
    t = Table(title=f"Dynamixel control loop: fast tick (sync read + joint impedance of the servo arm + "
                    f"limits + sync write), {SERIAL_LOOP_HZ:g} Hz config, unpaced, 6 virtual servos",
              title_justify="left")
    for col in ("faults", "ticks", "median", "p99", "max", "rate", "read errors", "holds", "target",
                "result"):
        t.add_column(col, justify="right")
    for name, r in loops:
        ok = r["rate_hz"] >= SERIAL_RATE_TARGET
        t.add_row(name, str(r["ticks"]), f"{r['median_ms']:.2f} ms", f"{r['p99_ms']:.2f} ms",
                  f"{r['max_ms']:.1f} ms", f"{r['rate_hz']:.0f} Hz", str(r["read_errors"]),
                  str(r["read_error_holds"]), f">= {SERIAL_RATE_TARGET:g} Hz",
                  "[green]pass[/]" if ok else "[red]FAIL[/]")
    con.print(t)
    if args.json is not None:
        res = {"serial_round_trip": dict(rows), "serial_loop": dict(loops)}
        con.print(f"results: {save_results(args.json, res)}")
    return 0
