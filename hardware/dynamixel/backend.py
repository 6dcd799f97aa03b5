"""``DynamixelBackend``: an arm of X-series servos behind the :class:`Backend` contract. The
impedance law runs on the host in both control modes; each tick is one sync read and one sync
write.

Control modes (``control_mode``; ``"auto"`` picks current where every servo has it):

- **current**: the commanded joint torque goes out as ``Goal_Current`` (``tau / kt``). The servo
  is a torque source; the host's impedance law is all there is.
- **position**, for servos without current control (XL430-W250) or by choice: the commanded
  torque goes out as a ``Goal_Position`` that the servo's own position loop turns into that
  torque, ``q_goal = q + tau / k_servo``. ``k_servo`` is the stiffness of the servo's loop [N m/
  rad], from its ``Position_P_Gain`` and the model's stall torque
  (:meth:`~.control_table.ModelInfo.position_stiffness`). The goal is bounded (``|tau|`` to the
  torque bound, so the servo never holds more than that much spring), its speed is limited to
  ``max_goal_speed`` (a step of a tick at most), and it never leaves the calibrated range. If
  the host stops writing, the servo keeps the last goal: at most ``tau_bound / k_servo`` from
  where the joint was, never a runaway.

Lifecycle:

- ``configure()`` opens the bus, pings every servo of the calibration (a missing one or a wrong
  model is a one-line :class:`BackendError`), turns torque off and sets ``Operating_Mode``
  (CURRENT, zeroing ``Goal_Current`` and reading each ``Current_Limit``; or POSITION, zeroing
  the motion profile, reading ``Position_P_Gain`` and ``PWM_Limit``, and writing the gain first
  with ``position_p_gain``), then reads one state, which must lie inside every joint's
  calibrated range (give or take :data:`RANGE_TOLERANCE`). Nothing is enabled.
- ``activate()`` turns torque on, and only then, commanding the arm model's gravity torque at the
  measured pose (zero without a model): the arm does not sag before the first command.
- ``read()`` is one sync read of ``Present_Current`` (``Present_Load`` on a model without current
  sensing), ``Present_Velocity`` and ``Present_Position`` (10 bytes from address 126).
- ``write(tau)`` sends the joint torques as described above, zero torque on a joint that is
  outside its range and pushed further out; one sync write; it returns the torque actually
  commanded (in position mode ``k_servo (q_goal - q)`` of the goal sent).
- ``hold()`` commands the gravity torque plus a damping torque against the last measured
  velocity, bounded by ``hold_current``: as a goal current, or as the goal position that makes
  it (without the speed limit: the hold's goal is the measured position plus the small, bounded
  offset of that torque, so it may jump back to the arm at once).
- On ``deactivate()`` / ``disconnect()``: ``on_exit="disable"`` turns torque off (the arm goes
  limp); ``on_exit="hold"`` keeps it on and hands the joints to the servos' own position loop,
  at the present position (plus, in position mode, the gravity offset), so they keep holding
  when the host is gone. In current mode that means ``CURRENT_BASED_POSITION`` with the current
  bounded by the hold current, and switching the mode needs torque off for a few ms; in
  position mode the servos are there already.

Faults: a bus fault after the retries (:class:`~.bus.BusError`) or a servo's error status comes
out of ``read``/``write``/``hold`` as a :class:`BackendError`; the control loop holds on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from robot_brain.controllers.model import RobotModel
from robot_brain.controllers.types import RobotState

from ..base import Backend, BackendError, Lifecycle
from . import control_table as ct
from .bus import BusError, DynamixelBus, HardwareAlert
from .calibration import CENTER, Calibration
from .protocol import StatusError

__all__ = ["CONTROL_MODES", "ON_EXIT", "RANGE_TOLERANCE", "DynamixelBackend"]

ON_EXIT = ("disable", "hold")
#: ``auto``: current control where every servo has it, else position.
CONTROL_MODES = ("auto", "current", "position")
#: How far past a calibrated extreme a joint may be at start [rad]: an arm resting on its
#: mechanical stop reads a few ticks either side of the extreme that calibration recorded there.
RANGE_TOLERANCE = 0.05
#: Retries per request while configuring and on exit (the loop's own retries are the bus's).
SETUP_RETRIES = 5
#: Reply timeout per attempt while configuring and on exit [s] (the loop's own is the bus's).
SETUP_TIMEOUT = 0.02
_STATE_START = ct.PRESENT_CURRENT.address
_STATE_LEN = ct.PRESENT_POSITION.address + ct.PRESENT_POSITION.size - _STATE_START  # 10 bytes
_STATE_DTYPE = np.dtype([("current", "<i2"), ("velocity", "<i4"), ("position", "<i4")])
assert _STATE_DTYPE.itemsize == _STATE_LEN


class DynamixelBackend(Backend):
    """An arm on a Dynamixel bus, torque-commanded (``interface = "effort"``) in either control mode.

    :param bus: the bus (opened by ``configure`` if it is not open; closed by ``disconnect``).
    :param calibration: the joints, in joint order (servo ids, models, offsets, ranges).
    :param control_dt: control period the loop writes at [s].
    :param on_exit: ``"disable"`` (torque off on deactivate/disconnect) or ``"hold"`` (the servos
        keep their present position with their own position loop).
    :param max_current: motor current bound [A] on top of each servo's ``Current_Limit`` (in
        position mode: a torque bound of ``max_current`` times the torque constant, on top of the
        ``PWM_Limit``'s share of the stall torque).
    :param hold_damping: joint damping of ``hold()`` [N m s/rad].
    :param hold_current: bound of the hold current [A] (and of the ``on_exit="hold"`` position loop).
    :param robot_model: the arm's kinematics and dynamics (fed the measured state; a task's
        controller shares it as ``backend.robot_model``).
    :param dry_run: read and compute everything but never turn torque on or write a goal (a
        rehearsal on the real arm, which stays limp).
    :param control_mode: ``"current"``, ``"position"`` or ``"auto"`` (current where every servo
        has current control, else position); see the module docstring.
    :param position_p_gain: position mode: ``Position_P_Gain`` written to every servo on
        configure (``None``: keep the servo's own, read back). It sets ``k_servo``.
    :param max_goal_speed: position mode: how fast the goal position may move [rad/s]; each tick
        moves it ``max_goal_speed * control_dt`` at most.

    ``read()`` fills ``q``, ``dq`` and ``tau`` (measured current x torque constant, or measured load
    x stall torque) in joint order with the calibration applied, and with a ``robot_model`` the
    tool's pose and twist (``ee_pos``, ``ee_quat``, ``ee_vel``); without one they stay zero
    (identity quaternion). ``wrench`` is zero: servo arms carry no force sensor.
    """

    interface = "effort"

    def __init__(self, bus: DynamixelBus, calibration: Calibration, *, control_dt: float,
                 on_exit: str = "disable", max_current: float | None = None,
                 hold_damping: float = 0.5, hold_current: float = 0.5,
                 robot_model: RobotModel | None = None, dry_run: bool = False,
                 control_mode: str = "auto", position_p_gain: int | None = None,
                 max_goal_speed: float = 6.0) -> None:
        super().__init__()
        if not (math.isfinite(control_dt) and control_dt > 0):
            raise ValueError(f"control_dt must be a positive number of seconds, got {control_dt!r}")
        if on_exit not in ON_EXIT:
            raise ValueError(f"on_exit must be one of {', '.join(ON_EXIT)}, got {on_exit!r}")
        if max_current is not None and not (math.isfinite(max_current) and max_current > 0):
            raise ValueError(f"max_current must be a positive current [A] or None, got {max_current!r}")
        if not (math.isfinite(hold_damping) and hold_damping >= 0):
            raise ValueError(f"hold_damping must be >= 0 N m s/rad, got {hold_damping!r}")
        if not (math.isfinite(hold_current) and hold_current > 0):
            raise ValueError(f"hold_current must be a positive current [A], got {hold_current!r}")
        if control_mode not in CONTROL_MODES:
            raise ValueError(f"control_mode must be one of {', '.join(CONTROL_MODES)}, got {control_mode!r}")
        if position_p_gain is not None and (isinstance(position_p_gain, bool) or not isinstance(
                position_p_gain, int) or not 1 <= position_p_gain <= 16383):
            raise ValueError(f"position_p_gain must be an integer in [1, 16383] or None, "
                             f"got {position_p_gain!r}")
        if not (math.isfinite(max_goal_speed) and max_goal_speed > 0):
            raise ValueError(f"max_goal_speed must be a positive speed [rad/s], got {max_goal_speed!r}")
        self.bus = bus
        self.calibration = calibration
        self.dt = float(control_dt)
        self.on_exit = on_exit
        self.max_current = max_current
        self.hold_damping = float(hold_damping)
        self.hold_current = float(hold_current)
        self.position_p_gain = position_p_gain
        self.max_goal_speed = float(max_goal_speed)
        self.n_joints = n = len(calibration)
        if robot_model is not None and robot_model.n != n:
            raise ValueError(f"the robot model has {robot_model.n} joints, the calibration {n}")
        self.robot_model = robot_model
        self.dry_run = bool(dry_run)
        self.ids = calibration.ids
        joints = calibration.joints
        self.control_mode = _resolve_mode(calibration, control_mode)  # ValueError: one line
        position = self.control_mode == "position"
        models = [j.model for j in joints]
        # Joint torque per motor ampere: only position mode's XL430 lacks current units, and
        # _resolve_mode has checked that every model here has a torque constant.
        kt = np.array([m.torque_constant or math.nan for m in models])
        direction = np.array([float(j.direction) for j in joints])
        self._kt = kt
        self._offset = np.array([float(CENTER + j.homing_offset) for j in joints])
        self._rad_per_tick = direction * np.array([m.rad_per_tick for m in models])
        self._rad_s_per_unit = direction * np.array([m.rad_s_per_unit for m in models])
        self._nm_per_unit = direction * np.array([m.nm_per_unit or math.nan for m in models])  # signed
        self._amp_per_unit = np.array([m.amp_per_unit for m in models])
        self.range_min = np.array([j.range_min for j in joints])
        self.range_max = np.array([j.range_max for j in joints])
        self.limit_units = np.zeros(n)  # current mode: |Goal_Current| bound per servo, set by configure
        # Position mode, set by configure: the servos' stiffness [N m/rad] and the torque bound
        # [N m] of a goal's offset from the joint.
        self.position_stiffness = np.zeros(n)
        self.limit_torque = np.zeros(n)
        self._goal = np.zeros(n)  # position mode: the last goal sent [rad, joint side]
        self._goal_step = self.max_goal_speed * self.dt
        self.goal_rate_limited = 0  # writes whose goal the speed limit held back
        self._models = models
        self._position = position
        self._state = RobotState(0.0, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(3),
                                 np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(6), np.zeros(6))
        self._tau_cmd = np.zeros(n)
        self._torque_on = False
        self._parked = False  # on_exit="hold": in the servos' own position loop
        self._opened_bus = False
        self.reads = 0
        self.writes = 0
        self.holds = 0
        self.read_errors = 0
        self.consecutive_failures = 0  # failed reads since the last good one
        self.hardware_error: tuple[int, int] | None = None  # (servo id, Hardware_Error_Status)
        self.fault: str | None = None  # what the hardware error means, one line
        self.write_errors = 0

    # -- helpers -------------------------------------------------------------------------------
    def _label(self, k: int) -> str:
        j = self.calibration.joints[k]
        return f"joint {j.name!r} (servo {j.servo_id})"

    def _sync_read_state(self) -> None:
        data = self.bus.sync_read(_STATE_START, _STATE_LEN, self.ids)
        raw = np.frombuffer(b"".join(data[i] for i in self.ids), dtype=_STATE_DTYPE)
        s = self._state
        np.multiply(raw["position"] - self._offset, self._rad_per_tick, out=s.q)
        np.multiply(raw["velocity"], self._rad_s_per_unit, out=s.dq)
        np.multiply(raw["current"], self._nm_per_unit, out=s.tau)
        s.t = time.monotonic()
        if self.robot_model is not None:
            self.robot_model.measure(s)

    def _send_units(self, units: np.ndarray) -> None:
        """One sync write of ``Goal_Current`` (``units``: integers in servo sign)."""
        enc = ct.GOAL_CURRENT.encode
        self.bus.sync_write(ct.GOAL_CURRENT.address, ct.GOAL_CURRENT.size,
                            {i: enc(int(u)) for i, u in zip(self.ids, units, strict=True)})

    def _units_of(self, tau: np.ndarray, bound_units: np.ndarray) -> np.ndarray:
        """Rounded, clipped goal-current units of joint torques ``tau``."""
        units = np.rint(tau / self._nm_per_unit)
        return np.clip(units, -bound_units, bound_units)

    # position mode: torque -> goal position ---------------------------------------------------
    def _goal_of(self, tau: np.ndarray, bound: np.ndarray, limit_speed: bool) -> np.ndarray:
        """The goal position [rad] whose spring makes the servo push ``tau`` from the present
        position: ``q + clip(tau, bound) / k_servo``, moved at most one tick of
        ``max_goal_speed`` from the last goal (with ``limit_speed``), inside the calibrated range.

        Why this is a torque command: the servo's position loop pushes ``k_servo (q_goal - q)``
        at rest, so the goal's offset from the measured ``q`` is the torque over its stiffness.
        Why the bound: if the host goes silent, the servo keeps pulling toward the last goal,
        which is then at most ``bound / k_servo`` away. Why the speed limit: the servo chases a
        new goal at once with all its stiffness; a jump would be a jerk the torque-rate limiter
        upstream never saw. Why the range: the goal is where the servo would end up with no
        load, so it must be a place the joint may be.
        """
        q = self._state.q
        goal = q + np.clip(tau, -bound, bound) / self.position_stiffness
        if limit_speed:
            lo, hi = self._goal - self._goal_step, self._goal + self._goal_step
            if ((goal < lo) | (goal > hi)).any():
                self.goal_rate_limited += 1
                goal = np.clip(goal, lo, hi)
        return np.clip(goal, self.range_min, self.range_max)

    def _send_goal(self, goal: np.ndarray) -> None:
        """One sync write of ``Goal_Position`` for joint angles ``goal`` [rad]; keeps what went
        out (whole ticks) as the last goal and its torque as the commanded one. A non-finite goal
        never reaches the bus: the servos keep the last one."""
        if not np.isfinite(goal).all():
            return
        ticks = np.rint(goal / self._rad_per_tick + self._offset)
        raw = ticks.astype("<i4").tobytes()
        size = ct.GOAL_POSITION.size
        self.bus.sync_write(ct.GOAL_POSITION.address, size,
                            {i: raw[size * k:size * (k + 1)] for k, i in enumerate(self.ids)})
        np.multiply(ticks - self._offset, self._rad_per_tick, out=self._goal)
        np.multiply(self._goal - self._state.q, self.position_stiffness, out=self._tau_cmd)

    @contextlib.contextmanager
    def _patient(self) -> Iterator[None]:
        """At least :data:`SETUP_RETRIES` retries per request and :data:`SETUP_TIMEOUT` per
        attempt: setting up and shutting down are dozens of single requests, not time-critical,
        and must not fail on one corrupted reply that the fast loop would simply hold through,
        nor on a servo (or an emulator on a busy machine) that answers a little late."""
        bus = self.bus
        saved = bus.retries, bus.timeout
        bus.retries = max(saved[0], SETUP_RETRIES)
        bus.timeout = max(saved[1], SETUP_TIMEOUT)
        try:
            yield
        finally:
            bus.retries, bus.timeout = saved

    def _hardware_error(self, servo_id: int) -> BackendError:
        """The error of a servo that raised its hardware alert, read from its
        ``Hardware_Error_Status`` and kept in :attr:`hardware_error`. A servo in that state has
        turned its own torque off and refuses to turn it on until it is rebooted."""
        k = self.ids.index(servo_id)
        try:
            bits = self.bus.read(servo_id, ct.HARDWARE_ERROR_STATUS.address, 1)[0]
        except HardwareAlert as alert:  # the read itself carries the alert bit: the data is good
            bits = alert.data[servo_id][0]
        except (BusError, StatusError, OSError):
            bits = 0
        names = [str(f.name).lower().replace("_", " ") for f in ct.HardwareError if bits & f]
        names = names or ["unknown"]
        self.hardware_error = (servo_id, bits)
        self.fault = (f"{self._label(k)} reports a hardware error: {', '.join(names)} "
                      f"(Hardware_Error_Status 0x{bits:02x}); it turned its torque off. Remove the "
                      f"cause, then reboot the servo (power-cycle, or DynamixelBus.reboot)")
        return BackendError(self.fault)

    def _guard(self, what: str, err: Exception) -> BackendError:
        if isinstance(err, BackendError):
            return err
        return BackendError(f"Dynamixel {what}: {err}")

    # -- lifecycle -----------------------------------------------------------------------------
    def _configure(self) -> None:
        bus = self.bus
        if not bus.is_open:
            bus.open()  # BusError (a BackendError): "cannot open Dynamixel bus ...: reason"
            self._opened_bus = True
        try:
            with self._patient():
                self._check_servos()
        except BaseException:
            if self._opened_bus:
                bus.close()
                self._opened_bus = False
            raise

    def _check_servos(self) -> None:
        bus, cal = self.bus, self.calibration
        for k, j in enumerate(cal.joints):
            try:
                model = bus.ping(j.servo_id)
            except BusError:
                raise BackendError(f"{self._label(k)} does not answer on {bus.port} (no reply to "
                                   f"ping): wrong id, baud rate or wiring?") from None
            except HardwareAlert:
                raise self._hardware_error(j.servo_id) from None
            except StatusError as e:
                raise BackendError(f"{self._label(k)}: ping answered with an error ({e})") from None
            if model != j.model_number:
                raise BackendError(f"{self._label(k)} is a {ct.model_info(model).name} (model {model}); "
                                   f"the calibration expects {j.model.name} (model {j.model_number})")
        try:
            bus.torque_enable(self.ids, False)
            self._torque_on = False
            if self._position:
                self._setup_position_mode()
            else:
                self._setup_current_mode()
            self._sync_read_state()
        except (BusError, StatusError, OSError) as e:
            raise self._guard("configure", e) from None
        q = self._state.q
        tol = RANGE_TOLERANCE
        for k in range(self.n_joints):
            if not self.range_min[k] - tol <= q[k] <= self.range_max[k] + tol:
                raise BackendError(
                    f"{self._label(k)} is at {q[k]:.3f} rad, outside its calibrated range "
                    f"[{self.range_min[k]:.3f}, {self.range_max[k]:.3f}] rad: move it into range "
                    f"or recalibrate; nothing was enabled")

    def _setup_current_mode(self) -> None:
        bus = self.bus
        bus.set_operating_mode(self.ids, ct.OperatingMode.CURRENT)
        self._send_units(np.zeros(self.n_joints))
        limits = [ct.CURRENT_LIMIT.decode(bus.read(i, ct.CURRENT_LIMIT.address, ct.CURRENT_LIMIT.size))
                  for i in self.ids]
        bound = np.array(limits, dtype=np.float64)
        if self.max_current is not None:
            bound = np.minimum(bound, np.floor(self.max_current / self._amp_per_unit))
        self.limit_units = bound

    def _setup_position_mode(self) -> None:
        """POSITION mode, no motion profile (the servo servos on each goal at once: a profile
        would turn the torque command into a slow ramp), the P gain set or read back, and the
        torque bound: the ``PWM_Limit``'s share of the stall torque, and ``max_current``."""
        bus = self.bus
        bus.set_operating_mode(self.ids, ct.OperatingMode.POSITION)
        for i in self.ids:
            bus.write(i, ct.PROFILE_ACCELERATION.address, ct.PROFILE_ACCELERATION.encode(0))
            bus.write(i, ct.PROFILE_VELOCITY.address, ct.PROFILE_VELOCITY.encode(0))
            if self.position_p_gain is not None:
                bus.write(i, ct.POSITION_P_GAIN.address, ct.POSITION_P_GAIN.encode(self.position_p_gain))
        for k, (i, m) in enumerate(zip(self.ids, self._models, strict=True)):
            gain = ct.POSITION_P_GAIN.decode(bus.read(i, ct.POSITION_P_GAIN.address, ct.POSITION_P_GAIN.size))
            pwm = ct.PWM_LIMIT.decode(bus.read(i, ct.PWM_LIMIT.address, ct.PWM_LIMIT.size))
            stiffness = m.position_stiffness(gain)
            stall = m.stall_torque
            assert stiffness is not None and stall is not None  # _resolve_mode checked the model
            if gain == 0 or pwm == 0:
                item = "Position_P_Gain" if gain == 0 else "PWM_Limit"
                raise BackendError(f"{self._label(k)} has {item} 0: its position loop makes no "
                                   f"torque; set it (serial.position_p_gain for the gain)")
            self.position_stiffness[k] = stiffness
            bound = stall * min(pwm, ct.PWM_MAX) / ct.PWM_MAX
            if self.max_current is not None:
                bound = min(bound, self.max_current * self._kt[k])
            self.limit_torque[k] = bound

    def _activate(self) -> None:
        try:
            with self._patient():
                if self._position:
                    self._activate_position()
                    return
                if self._parked:  # in the servos' position loop since on_exit="hold"
                    self.bus.torque_enable(self.ids, False)
                    self._torque_on = self._parked = False
                    self.bus.set_operating_mode(self.ids, ct.OperatingMode.CURRENT)
                # Torque comes on holding the arm up: the model's gravity torque at the measured
                # pose (zero without a model), so the arm does not sag before the first command.
                units = self._units_of(self._gravity(), self._hold_bound())
                self._send_units(units)
                np.multiply(units, self._nm_per_unit, out=self._tau_cmd)
                if not self.dry_run:
                    self.bus.torque_enable(self.ids, True)
                    self._torque_on = True
        except (BusError, StatusError, OSError) as e:
            raise self._guard("activate", e) from None

    def _activate_position(self) -> None:
        """Torque on at the present position plus the gravity offset. The state is read again
        first: with torque off since configure, the arm may have sagged, and a goal where it was
        would pull it back with the servo's full stiffness. The goal goes out before torque on
        (a servo that keeps it starts there) and again after (one that resets it to the present
        position on torque on, as some firmware does, gets it too)."""
        self._parked = False
        self._sync_read_state()
        goal = self._goal_of(self._gravity(), self._hold_torque_bound(), limit_speed=False)
        if self.dry_run:
            self._goal[:] = goal
            return
        self._send_goal(goal)
        self.bus.torque_enable(self.ids, True)
        self._torque_on = True
        self._send_goal(goal)

    def _park(self) -> None:
        """``on_exit="hold"``: the servos hold their present position themselves."""
        bus = self.bus
        if self._position:  # already in their position loop: a last goal, gravity included
            self._send_goal(self._goal_of(self._gravity(), self._hold_torque_bound(), limit_speed=False))
            bus.torque_enable(self.ids, True)  # confirmed: a servo that did not get it says so
            self._torque_on = self._parked = True
            return
        bound = self._hold_bound()
        bus.torque_enable(self.ids, False)
        bus.set_operating_mode(self.ids, ct.OperatingMode.CURRENT_BASED_POSITION)
        data = bus.sync_read(ct.PRESENT_POSITION.address, ct.PRESENT_POSITION.size, self.ids)
        bus.sync_write(ct.GOAL_POSITION.address, ct.GOAL_POSITION.size, data)  # same bytes: hold here
        self._send_units(bound)  # the position loop's current bound
        bus.torque_enable(self.ids, True)
        self._torque_on = self._parked = True

    def _exit(self) -> None:
        if self.dry_run:
            return  # torque was never turned on
        if self.on_exit == "disable":
            self.bus.torque_enable(self.ids, False)
            self._torque_on = False
        else:
            self._park()

    def _deactivate(self) -> None:
        try:
            with self._patient():
                self._exit()
        except (BusError, StatusError, OSError) as e:
            raise self._guard("deactivate", e) from None

    def _disconnect(self) -> None:
        try:
            if self.bus.is_open and self._torque_on and not self._parked:
                with self._patient():
                    self._exit()  # deactivate did not get there (a fault on the way)
        except (BusError, StatusError, OSError):
            pass  # nothing more can be done over this bus
        finally:
            self.bus.close()
            self._opened_bus = False

    # -- data path -----------------------------------------------------------------------------
    def _read(self) -> RobotState:
        try:
            self._sync_read_state()
        except HardwareAlert as e:
            self.read_errors += 1
            self.consecutive_failures += 1
            raise self._hardware_error(e.servo_id) from None
        except (BusError, StatusError, OSError) as e:
            self.read_errors += 1
            self.consecutive_failures += 1
            raise self._guard("read", e) from None
        self.reads += 1
        self.consecutive_failures = 0
        return self._state

    def _write(self, command: np.ndarray) -> np.ndarray:
        tau = np.asarray(command, dtype=np.float64)
        if tau.shape != (self.n_joints,) or not np.isfinite(tau).all():
            raise ValueError(f"write() refused a non-finite or wrongly sized torque command "
                             f"(expected {self.n_joints} finite values, got shape {tau.shape})")
        q = self._state.q
        tau = np.where(((q < self.range_min) & (tau < 0)) | ((q > self.range_max) & (tau > 0)), 0.0, tau)
        try:
            if self._position:
                goal = self._goal_of(tau, self.limit_torque, limit_speed=True)
                if self.dry_run:
                    self._goal[:] = goal
                    np.multiply(goal - q, self.position_stiffness, out=self._tau_cmd)
                else:
                    self._send_goal(goal)
            else:
                units = self._units_of(tau, self.limit_units)
                if not self.dry_run:
                    self._send_units(units)
                np.multiply(units, self._nm_per_unit, out=self._tau_cmd)
        except (BusError, StatusError, OSError) as e:
            self.write_errors += 1
            raise self._guard("write", e) from None
        self.writes += 1
        return self._tau_cmd.copy()

    def _gravity(self) -> np.ndarray:
        """The model's gravity (and Coriolis) torque at the last measured state; zeros without
        a model."""
        if self.robot_model is None:
            return np.zeros(self.n_joints)
        return np.asarray(self.robot_model.bias, dtype=np.float64)

    def _hold_bound(self) -> np.ndarray:
        return np.minimum(self.limit_units, np.floor(self.hold_current / self._amp_per_unit))

    def _hold_torque_bound(self) -> np.ndarray:
        """Position mode: the hold's torque bound [N m], ``hold_current`` x torque constant."""
        return np.minimum(self.limit_torque, self.hold_current * self._kt)

    def _hold(self) -> None:
        """The arm's gravity torque (with a robot model) plus a damping torque against the last
        measured velocity, bounded by ``hold_current``; one sync write (a goal current, or the
        goal position that makes it)."""
        if not self._torque_on or self.lifecycle is not Lifecycle.ACTIVE:
            return
        tau = self._gravity() - self.hold_damping * self._state.dq
        try:
            if self._position:
                self._send_goal(self._goal_of(tau, self._hold_torque_bound(), limit_speed=False))
            else:
                units = self._units_of(tau, self._hold_bound())
                self._send_units(units)
                np.multiply(units, self._nm_per_unit, out=self._tau_cmd)
        except (BusError, StatusError, OSError) as e:
            raise self._guard("hold", e) from None
        self.holds += 1

    def status(self, latency: bool = False) -> dict[str, Any]:
        """Counters for the end-of-run report (``latency`` is accepted for the deploy command's
        sake; the bus's round trips are timed by ``robot-brain bench --serial``)."""
        st = self.bus.stats
        out = {"reads": self.reads, "writes": self.writes, "holds": self.holds,
               "read_errors": self.read_errors, "write_errors": self.write_errors,
               "bus": dataclasses.asdict(st), "control_mode": self.control_mode,
               "torque_on": self._torque_on, "lifecycle": self.lifecycle.value, "dry_run": self.dry_run}
        if self._position:
            out["goal_rate_limited"] = self.goal_rate_limited
            out["position_stiffness"] = [float(k) for k in self.position_stiffness]
        return out

    @property
    def commanded(self) -> np.ndarray:
        """The joint torque of the last command sent [N m]: of the goal current, or in position
        mode of the goal position's offset from the joint (``k_servo (q_goal - q)``)."""
        return self._tau_cmd.copy()


def _resolve_mode(calibration: Calibration, requested: str) -> str:
    """The control mode of ``requested`` for the calibration's servo models; one-line
    ``ValueError`` naming the joint whose model cannot run it."""
    joints = calibration.joints
    if requested == "auto":
        requested = "current" if all(j.model.current_control for j in joints) else "position"
    for j in joints:
        m = j.model
        if requested == "current" and not m.current_control:
            raise ValueError(f"joint {j.name!r}: servo model {m.name} has no current control; "
                             f"run it in position mode (serial.control_mode: position or auto)")
        if requested == "current" and m.torque_constant is None:
            raise ValueError(f"joint {j.name!r}: servo model {m.name} has no known torque constant "
                             f"or no current control; torque control needs both")
        if requested == "position" and m.stall_torque is None:
            raise ValueError(f"joint {j.name!r}: servo model {m.name} has no known stall torque or "
                             f"torque constant; position control needs them to turn a torque into "
                             f"a goal position")
    return requested
