"""``robot-brain replay BAG``: a first sim-to-real gap report from a flight recording.

The simulated arm starts at the first recorded joint state and is driven by the recorded
setpoints (pose, stiffness and damping ratio, each from its time until the next) through the same
Cartesian impedance controller and torque limits at the control rate; its trajectory is then
compared with the recorded joint states: per-joint RMS error, the tool-position gap over time
(forward kinematics of the recorded joints against the simulated tool), and the first time the
gap exceeds the tolerance, where the real and simulated trajectories part.

Time base: the setpoints carry the stamp of the state they were computed for, which is the
joint state's own stamp, so when both have stamps they are aligned on them; otherwise (stamps
missing or on another clock) on the bag's time stamps. Events (bag time) are moved onto the same
time line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._common import CliError, output_path, positive_float

NAME = "replay"
HELP = "replay a flight recording in simulation and report where sim and real part"
DESCRIPTION = """Replay a bag recorded with 'robot-brain deploy --record' (or 'sim-robot --record')
in MuJoCo: the simulated arm starts at the first recorded joint state and follows the recorded
setpoints (pose + stiffness + damping ratio) through the same Cartesian impedance controller at
the control rate. Reports the per-joint RMS error, the tool-position gap (max and RMS) and the
first time the gap exceeds --tolerance: where the real and the simulated trajectories part.

examples:
  robot-brain replay runs/deploy/run1
  robot-brain replay run1.mcap --tolerance 0.005 --json gap.json --plot gap.png
  robot-brain replay run1 --robot launch/config/panda.yaml
"""

CONTROL_HZ_RANGE = (50.0, 5000.0)
SERIES_POINTS = 1000  # points of the tool-gap series in the JSON (each the max of its bin)
DIVERGENCE_FRACTION = 0.1  # the gap "starts growing" at the last time it was below this x tol


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", type=Path, metavar="BAG",
                   help="the recording: a bag folder (or BAG.mcap naming it)")
    p.add_argument("--tolerance", type=positive_float, default=0.01, metavar="M",
                   help="tool gap [m] at which the trajectories count as parted (default: 0.01)")
    p.add_argument("--json", type=output_path((".json",)), default=None, metavar="FILE",
                   help="write the report to FILE (atomically)")
    p.add_argument("--plot", type=output_path((".png", ".svg", ".pdf")), default=None,
                   metavar="FILE.png", help="plot the tool gap over time with the tolerance "
                                            "and the recorded events")
    p.add_argument("--control-hz", type=positive_float, default=1000.0, metavar="HZ",
                   help="control rate of the replay (default: 1000)")
    p.add_argument("--robot", type=Path, default=None, metavar="CFG",
                   help="robot config (launch/config/*.yaml): its 'joints' give the controller's "
                        "joint order (joints[i] is the model's joint i) and its joint-states "
                        "topic; default: the bag's names matched to joint1..joint7")


# -- reading the recording ---------------------------------------------------------------------
@dataclass
class Recording:
    """A recording on one time line [s]: joint states and setpoints, each sorted by time."""

    joints: tuple[str, ...]  # the bag's names of the model's joints, in model order
    t_js: Any  # (N,) joint-state times
    q: Any  # (N, n) recorded joint positions, model order
    dq0: Any  # (n,) velocity of the first state (zeros when not recorded)
    t_sp: Any  # (M,) setpoint times
    position: Any  # (M, 3)
    quat: Any  # (M, 4) w x y z
    stiffness: Any  # (M, 6)
    damping_ratio: Any  # (M, 6)
    time_base: str  # "header stamps" or "bag time"
    events: list[tuple[float, str]] = field(default_factory=list)
    skipped: int = 0  # joint-state messages without all the joints (a gripper's own message)
    arm: str = "panda"  # the arm model the recording is replayed on (envs.ARMS)


def _joint_order(names: Sequence[str], model_joints: Sequence[str],
                 config_joints: Sequence[str] | None) -> tuple[str, ...]:
    """The bag's joint names in model order: the config's, else the model's names, else the
    model's names behind one common prefix (``panda_joint1`` ... or ``fr3_joint1`` ...)."""
    present = set(names)
    if config_joints is not None:
        if len(config_joints) != len(model_joints):
            raise CliError(f"the robot config names {len(config_joints)} joints; the simulated "
                           f"arm has {len(model_joints)}")
        missing = [j for j in config_joints if j not in present]
        if missing:
            raise CliError(f"the recorded joint states have no joint {missing[0]!r} of the robot "
                           f"config (they have: {', '.join(sorted(present))})")
        return tuple(config_joints)
    if all(j in present for j in model_joints):
        return tuple(model_joints)
    first = model_joints[0]
    prefixes = {n[: -len(first)] for n in present if n.endswith(first)}
    fits = sorted(pre for pre in prefixes if all(pre + j in present for j in model_joints))
    if len(fits) == 1:
        return tuple(fits[0] + j for j in model_joints)
    raise CliError(f"cannot match the recorded joints ({', '.join(sorted(present)) or 'none'}) "
                   f"to the arm's {', '.join(model_joints)}; give their order with --robot CFG")


def _event(text: str) -> tuple[str, float | None]:
    """An event's label and its own time ``t`` [s] (deploy's events carry the time of the state
    they happened at, on the joint states' stamp clock; None when absent)."""
    label = text.strip().splitlines()[0][:40] if text.strip() else "event"
    try:
        obj = json.loads(text)
    except ValueError:
        return label, None
    if not isinstance(obj, dict):
        return label, None
    t = obj.get("t")
    label = next((obj[k] for k in ("reason", "event", "kind", "type", "name")
                  if isinstance(obj.get(k), str)), label)
    if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t):
        return label, float(t)
    return label, None


def _joint_states(bag: Path, topic: str, msgs: list[tuple[float, Any]],
                  joints: Sequence[str]) -> tuple[list[float], list[float], list[list[float]],
                                                  list[list[float] | None], int]:
    """Bag times, stamps, positions and velocities (model order) of the joint states that hold
    every joint, and how many were skipped (a gripper's own message, NaN)."""
    from robot_brain.hardware.ros2.messages import stamp_to_sec

    index_cache: dict[tuple[str, ...], list[int] | None] = {}
    log, stamps, qs, dqs = [], [], [], []
    skipped = 0
    for t_log, m in msgs:
        key = tuple(m.name)
        if key not in index_cache:
            index_cache[key] = ([key.index(j) for j in joints]
                                if all(j in key for j in joints) else None)
        idx = index_cache[key]
        if idx is None or len(m.position) != len(key):
            skipped += 1
            continue
        q = [m.position[i] for i in idx]
        if not all(math.isfinite(v) for v in q):
            skipped += 1
            continue
        log.append(t_log)
        stamps.append(stamp_to_sec(m.header.stamp))
        qs.append(q)
        dqs.append([m.velocity[i] for i in idx] if len(m.velocity) == len(key) else None)
    if not qs:
        raise CliError(f"{bag}: no joint state on {topic} holds all of {', '.join(joints)}")
    return log, stamps, qs, dqs, skipped


def _gains(bag: Path, series: list[tuple[float, Any]], topic: str, at: Any) -> Any:
    """The 6 values on ``topic`` in force at each bag time of ``at`` (the message recorded with
    the setpoint, or the latest before it)."""
    import numpy as np

    vals = []
    for _, m in series:
        if len(m.data) != 6 or not all(math.isfinite(v) and v >= 0 for v in m.data):
            raise CliError(f"{bag}: a message on {topic} does not hold 6 finite values >= 0")
        vals.append(list(m.data))
    t = np.array([s[0] for s in series])
    pick = np.clip(np.searchsorted(t, at + 1e-7, side="right") - 1, 0, len(t) - 1)
    return np.array(vals, dtype=np.float64)[pick]


def _poses(bag: Path, msgs: list[tuple[float, Any]], topic: str) -> tuple[Any, Any]:
    """Positions (M, 3) and unit quaternions w x y z (M, 4) of the setpoints."""
    import numpy as np

    position = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z]
                         for _, m in msgs], dtype=np.float64)
    quat = np.array([[m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y,
                      m.pose.orientation.z] for _, m in msgs], dtype=np.float64)
    norms = np.linalg.norm(quat, axis=1)
    if not (np.isfinite(position).all() and np.isfinite(quat).all() and (norms > 0.5).all()):
        raise CliError(f"{bag}: a setpoint on {topic} is not finite or its orientation is not "
                       "a unit quaternion")
    return position, quat / norms[:, None]


def load_recording(bag: Path, *, js_topic: str = "/joint_states",
                   config_joints: Sequence[str] | None = None, arm: str | None = None,
                   progress: Any = None) -> Recording:
    """Read what the replay needs from ``bag``; :class:`CliError` (one line) when it cannot.

    ``arm`` names the arm model (a robot config's ``arm``); by default the arm whose joint
    names the recording carries (the Panda when none fits)."""
    import numpy as np

    from robot_brain.envs import ARMS
    from robot_brain.hardware.ros2.messages import stamp_to_sec
    from robot_brain.hardware.ros2.recorder import (
        DAMPING_RATIO_TOPIC,
        EVENTS_TOPIC,
        SETPOINT_TOPIC,
        STIFFNESS_TOPIC,
        read_bag,
    )

    topics = (js_topic, SETPOINT_TOPIC, STIFFNESS_TOPIC, DAMPING_RATIO_TOPIC, EVENTS_TOPIC)
    try:
        data = read_bag(bag, topics, progress=progress)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    js_msgs = data.get(js_topic, [])
    if not js_msgs:
        raise CliError(f"{bag} has no joint states on {js_topic}")
    sp_msgs = data.get(SETPOINT_TOPIC, [])
    if not sp_msgs:
        raise CliError(f"{bag} has no setpoints on {SETPOINT_TOPIC} (recorded by "
                       "'robot-brain deploy --record')")
    for topic in (STIFFNESS_TOPIC, DAMPING_RATIO_TOPIC):
        if not data.get(topic):
            raise CliError(f"{bag} has setpoints but nothing on {topic}")

    names: list[str] = []
    for _, m in js_msgs:
        names.extend(n for n in m.name if n not in names)
    if arm is None:  # the first arm whose joints the bag names, else the Panda (its error)
        arm = next((a.name for a in ARMS.values() if set(a.joint_names) <= set(names)), "panda")
    joints = _joint_order(names, ARMS[arm].joint_names, config_joints)
    log_js, stamp_js, qs, dqs, skipped = _joint_states(bag, js_topic, js_msgs, joints)

    log_sp = np.array([t for t, _ in sp_msgs])
    stiffness = _gains(bag, data[STIFFNESS_TOPIC], STIFFNESS_TOPIC, log_sp)
    damping = _gains(bag, data[DAMPING_RATIO_TOPIC], DAMPING_RATIO_TOPIC, log_sp)
    position, quat = _poses(bag, sp_msgs, SETPOINT_TOPIC)

    # One time line: the header stamps when both have them on one clock, else bag time.
    stamp_sp = np.array([stamp_to_sec(m.header.stamp) for _, m in sp_msgs])
    log_js_a, stamp_js_a = np.array(log_js), np.array(stamp_js)
    use_stamps = bool((stamp_js_a > 0).all() and (stamp_sp > 0).all()
                      and stamp_js_a.min() - 1.0 <= stamp_sp.min() <= stamp_js_a.max())
    if use_stamps:
        t_js, t_sp = stamp_js_a, stamp_sp
        offset = float(np.median(log_js_a - stamp_js_a))  # bag time - stamp
    else:
        t_js, t_sp, offset = log_js_a, log_sp, 0.0
    # An event is logged when the loop reports it (up to a slow step after it happened); its own
    # time, on the stamps' clock, places it exactly.
    events = []
    for t_log, m in data.get(EVENTS_TOPIC, []):
        label, t_own = _event(m.data)
        events.append((t_own if use_stamps and t_own is not None else t_log - offset, label))

    # After the last setpoint the brain stopped (its safe stop holds the arm, with no setpoint
    # to replay): compare up to there, one setpoint period on.
    if len(t_sp) > 1:
        end = float(t_sp.max()) + float(np.median(np.diff(np.sort(t_sp))))
        keep = t_js <= end
        if keep.any():
            t_js = t_js[keep]
            qs = [q for q, k in zip(qs, keep, strict=True) if k]
            dqs = [d for d, k in zip(dqs, keep, strict=True) if k]
    o_js = np.argsort(t_js, kind="stable")
    o_sp = np.argsort(t_sp, kind="stable")
    first_dq = dqs[int(o_js[0])]
    dq0 = np.array(first_dq if first_dq is not None else np.zeros(len(joints)), dtype=np.float64)
    return Recording(
        joints=joints, t_js=t_js[o_js], q=np.array(qs, dtype=np.float64)[o_js],
        dq0=dq0 if np.isfinite(dq0).all() else np.zeros(len(joints)), t_sp=t_sp[o_sp],
        position=position[o_sp], quat=quat[o_sp], stiffness=stiffness[o_sp],
        damping_ratio=damping[o_sp], time_base="header stamps" if use_stamps else "bag time",
        events=sorted(events), skipped=skipped, arm=arm,
    )


# -- the replay ------------------------------------------------------------------------------
def simulate(rec: Recording, control_hz: float, progress: Any = None) -> tuple[Any, Any, Any]:
    """Drive the simulated arm with the recorded setpoints; returns the simulated joint
    positions and tool positions at the recorded joint states' times, and the recorded tool
    positions (forward kinematics of the recorded joints)."""
    import mujoco
    import numpy as np

    from robot_brain.controllers import CartesianImpedance, Command, TorqueLimiter
    from robot_brain.controllers.limits import NONFINITE
    from robot_brain.envs import ARMS
    from robot_brain.hardware import MujocoBackend

    arm = ARMS[rec.arm]
    model = mujoco.MjModel.from_xml_string(arm.build_mjcf(""))
    dt = 1.0 / control_hz
    model.opt.timestep = dt / max(1, round(dt / arm.timestep))  # physics step <= the model's
    backend = MujocoBackend(model, n_joints=arm.n_joints, ee_site=arm.ee_site,
                            tool_body=arm.tool_body, control_dt=dt)
    n = backend.n_joints
    q0 = rec.q[0]
    backend.set_state(q0, rec.dq0)
    backend.activate()
    controller = CartesianImpedance(backend.robot_model)
    controller.q_null[:] = q0
    limiter = TorqueLimiter(arm.tau_max, arm.tau_rate_max, dt)
    limiter.reset(backend.data.qfrc_bias[:n])  # the arm starts held against gravity

    t0 = float(rec.t_js[0])
    k_js = np.rint((rec.t_js - t0) / dt).astype(np.int64)  # the tick of each joint state
    t_sp = rec.t_sp
    cmd = Command(stiffness=rec.stiffness[0].copy(), damping_ratio=rec.damping_ratio[0].copy(),
                  position=rec.position[0].copy(), orientation=rec.quat[0].copy())
    n_js, n_sp = len(k_js), len(t_sp)
    q_sim = np.zeros((n_js, n))
    ee_sim = np.zeros((n_js, 3))
    n_ticks = int(k_js[-1]) + 1
    j = 0  # next joint state to compare
    s = 0  # active setpoint
    chunk = 1000
    for k in range(n_ticks):
        tk = t0 + k * dt
        s_new = s
        while s_new + 1 < n_sp and t_sp[s_new + 1] <= tk + 0.5 * dt:
            s_new += 1
        if s_new != s:
            s = s_new
            cmd.position[:] = rec.position[s]  # type: ignore[index]
            cmd.orientation[:] = rec.quat[s]  # type: ignore[index]
            cmd.stiffness[:] = rec.stiffness[s]
            cmd.damping_ratio[:] = rec.damping_ratio[s]
        state = backend.read()
        while j < n_js and k_js[j] == k:
            q_sim[j] = state.q
            ee_sim[j] = state.ee_pos
            j += 1
        tau = limiter(controller.torque(state, cmd))
        if limiter.flags & NONFINITE:
            backend.hold()
        else:
            backend.write(tau)
        if progress is not None and (k + 1) % chunk == 0:
            progress(chunk)
    if progress is not None and n_ticks % chunk:
        progress(n_ticks % chunk)

    data = mujoco.MjData(model)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, arm.ee_site)
    ee_real = np.zeros((n_js, 3))
    for i in range(n_js):
        data.qpos[:n] = rec.q[i]
        mujoco.mj_kinematics(model, data)
        ee_real[i] = data.site_xpos[site]
    return q_sim, ee_sim, ee_real


def _series(t: Any, err: Any, points: int) -> dict[str, list[float]]:
    """At most ``points`` points of the gap over time, each the largest of its bin."""
    import numpy as np

    if len(t) <= points:
        return {"t_s": t.tolist(), "error_m": err.tolist()}
    bins = np.array_split(np.arange(len(t)), points)
    picks = [int(b[np.argmax(err[b])]) for b in bins]
    return {"t_s": t[picks].tolist(), "error_m": err[picks].tolist()}


def gap_report(bag: Path, rec: Recording, q_sim: Any, ee_sim: Any, ee_real: Any, *,
               tolerance: float, control_hz: float) -> dict[str, Any]:
    """The report's numbers (JSON-ready)."""
    import numpy as np

    from robot_brain.envs import ARMS

    model_joints = ARMS[rec.arm].joint_names
    t = np.round(rec.t_js - rec.t_js[0], 6)  # us: stamps near 1.7e9 s carry float noise
    err = np.linalg.norm(ee_real - ee_sim, axis=1)
    joint_rms = np.sqrt(np.mean((rec.q - q_sim) ** 2, axis=0))
    over = np.flatnonzero(err > tolerance)
    parting = float(t[over[0]]) if over.size else None
    growing = None  # the last time before the parting at which the gap was still small
    if over.size:
        small = np.flatnonzero(err[: over[0]] <= DIVERGENCE_FRACTION * tolerance)
        growing = float(t[small[-1]]) if small.size else 0.0
    return {
        "bag": str(bag),
        "time_base": rec.time_base,
        "duration_s": float(t[-1]),
        "control_hz": control_hz,
        "tolerance_m": tolerance,
        "joint_states": len(t),
        "joint_states_skipped": rec.skipped,
        "setpoints": len(rec.t_sp),
        "arm": rec.arm,
        "joints": dict(zip(model_joints, rec.joints, strict=True)),
        "joint_rms_rad": dict(zip(model_joints, joint_rms.tolist(), strict=True)),
        "tool_error_max_m": float(err.max()),
        "tool_error_rms_m": float(np.sqrt(np.mean(err ** 2))),
        "tool_error_final_m": float(err[-1]),
        "parted": parting is not None,
        "parting_time_s": parting,
        "divergence_start_s": growing,
        "events": [{"t_s": round(ev_t - float(rec.t_js[0]), 6), "label": label}
                   for ev_t, label in rec.events],
        "tool_error_series": _series(t, err, SERIES_POINTS),
    }


# -- output ----------------------------------------------------------------------------------
def _tables(report: dict[str, Any]) -> list[Any]:
    from rich.table import Table

    mm = 1000.0
    summary = Table(title=f"sim-to-real gap: {report['bag']}", title_justify="left")
    summary.add_column("measure")
    summary.add_column("value", justify="right")
    parting = report["parting_time_s"]
    rows = [
        ("recording", f"{report['duration_s']:.3f} s, {report['joint_states']} joint states, "
                      f"{report['setpoints']} setpoints, {len(report['events'])} events"),
        ("time base", report["time_base"]),
        ("tool gap max", f"{report['tool_error_max_m'] * mm:.2f} mm"),
        ("tool gap RMS", f"{report['tool_error_rms_m'] * mm:.2f} mm"),
        ("tool gap at the end", f"{report['tool_error_final_m'] * mm:.2f} mm"),
        (f"parting (gap > {report['tolerance_m'] * mm:g} mm)",
         "never" if parting is None else f"at {parting:.3f} s"),
    ]
    if report["divergence_start_s"] is not None:
        rows.append((f"gap growing from (last < {DIVERGENCE_FRACTION * report['tolerance_m'] * mm:g} mm)",
                     f"{report['divergence_start_s']:.3f} s"))
    for name, value in rows:
        summary.add_row(name, value)
    joints = Table(title="joint RMS error", title_justify="left")
    joints.add_column("joint")
    joints.add_column("recorded as")
    joints.add_column("RMS [rad]", justify="right")
    joints.add_column("RMS [deg]", justify="right")
    for name, rms in report["joint_rms_rad"].items():
        joints.add_row(name, report["joints"][name], f"{rms:.5f}", f"{math.degrees(rms):.3f}")
    return [summary, joints]


def plot_gap(path: Path, t: Any, err: Any, report: dict[str, Any]) -> Path:
    """Tool gap [mm] over time with the tolerance, the parting time and the events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robot_brain.fileio import atomic_savefig

    fig, ax = plt.subplots(figsize=(9, 4))
    try:
        ax.plot(t, err * 1000.0, lw=1.2, label="tool gap (real - sim)")
        tol = report["tolerance_m"] * 1000.0
        ax.axhline(tol, color="tab:red", ls="--", lw=1, label=f"tolerance {tol:g} mm")
        if report["parting_time_s"] is not None:
            ax.axvline(report["parting_time_s"], color="tab:red", lw=1,
                       label=f"parting at {report['parting_time_s']:.3f} s")
        for i, ev in enumerate(report["events"]):
            ax.axvline(ev["t_s"], color="gray", ls=":", lw=1,
                       label="recorded events" if i == 0 else None)
            ax.annotate(ev["label"], (ev["t_s"], 1.0), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=7, color="dimgray")
        ax.set_xlabel("time since the first joint state [s]")
        ax.set_ylabel("tool position gap [mm]")
        ax.set_title(f"replay of {Path(report['bag']).name}: simulated vs recorded tool")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        return atomic_savefig(fig, path, dpi=120)
    finally:
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from robot_brain.hardware.ros2.recorder import (
        DAMPING_RATIO_TOPIC,
        EVENTS_TOPIC,
        JOINT_STATES_TOPIC,
        SETPOINT_TOPIC,
        STIFFNESS_TOPIC,
        bag_message_count,
    )

    from ._common import console, save_results

    lo, hi = CONTROL_HZ_RANGE
    if not lo <= args.control_hz <= hi:
        raise CliError(f"argument --control-hz: must be in [{lo:g}, {hi:g}], got {args.control_hz:g}")
    js_topic, config_joints, arm = JOINT_STATES_TOPIC, None, None
    if args.robot is not None:
        from robot_brain.envs import ARMS
        from robot_brain.hardware.ros2.config import load_robot_config

        try:
            cfg = load_robot_config(args.robot)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        js_topic, config_joints, arm = cfg.joint_states_topic, cfg.joints, cfg.arm
        if arm not in ARMS:
            raise CliError(f"robot config {args.robot}: unknown arm {arm!r} (known: {', '.join(ARMS)})")

    topics = (js_topic, SETPOINT_TOPIC, STIFFNESS_TOPIC, DAMPING_RATIO_TOPIC, EVENTS_TOPIC)
    try:
        total = bag_message_count(args.bag, topics)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    bar_kw: dict[str, Any] = {"file": sys.stderr, "disable": None, "leave": False,
                              "dynamic_ncols": True}
    with tqdm(total=total, desc="reading", unit="msg", **bar_kw) as bar:
        rec = load_recording(args.bag, js_topic=js_topic, config_joints=config_joints, arm=arm,
                             progress=bar.update)
    dt = 1.0 / args.control_hz
    n_ticks = round(float(rec.t_js[-1] - rec.t_js[0]) / dt) + 1
    with tqdm(total=n_ticks, desc="replaying", unit="tick", **bar_kw) as bar:
        q_sim, ee_sim, ee_real = simulate(rec, args.control_hz, progress=bar.update)
    report = gap_report(args.bag, rec, q_sim, ee_sim, ee_real, tolerance=args.tolerance,
                        control_hz=args.control_hz)

    con = console()
    for table in _tables(report):
        con.print(table)
    if args.json is not None:
        con.print(f"json: {save_results(args.json, report)}")
    if args.plot is not None:
        t = rec.t_js - rec.t_js[0]
        err = np.linalg.norm(ee_real - ee_sim, axis=1)
        con.print(f"plot: {plot_gap(args.plot, t, err, report)}")
    return 0
