"""Small rotation helpers on numpy arrays (quaternions are w, x, y, z, as in MuJoCo).

numpy-only on purpose: the env core and the tasks must not import mujoco or scipy.
The `*_f` kernels take and return python floats: the array functions call them, and the per-step hot paths
(action map, task reward) use them directly to skip small-array overhead with the same arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def quat_mul_f(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Hamilton product on python floats (w, x, y, z): the kernel of `quat_mul`, for hot paths that skip arrays."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return (
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    )


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b."""
    return np.array(quat_mul_f(a.tolist(), b.tolist()))  # python floats: ~5x faster than numpy scalars for 4-vectors


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The same rotation with w >= 0, so observations have no sign flips."""
    return -q if q[0] < 0 else q


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    return np.array(quat_from_rotvec_f(*v.tolist()))


def quat_from_rotvec_f(x: float, y: float, z: float) -> tuple[float, float, float, float]:
    """Kernel of `quat_from_rotvec` on python floats."""
    angle = math.sqrt(x * x + y * y + z * z)
    if angle < 1e-12:
        n = math.sqrt(1.0 + 0.25 * angle * angle)
        return (1.0 / n, 0.5 * x / n, 0.5 * y / n, 0.5 * z / n)
    s = math.sin(angle / 2) / angle
    return (math.cos(angle / 2), s * x, s * y, s * z)


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a unit quaternion."""
    return np.array(rotvec_from_quat_f(*q.tolist()))


def rotvec_from_quat_f(w: float, x: float, y: float, z: float) -> tuple[float, float, float]:
    """Kernel of `rotvec_from_quat` on python floats."""
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    s = math.sqrt(x * x + y * y + z * z)
    if s < 1e-12:
        return (2.0 * x, 2.0 * y, 2.0 * z)
    k = 2.0 * math.atan2(s, w) / s
    return (k * x, k * y, k * z)


def quat_from_yaw(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def yaw_from_quat(q: np.ndarray) -> float:
    """Heading of the body x-axis in the world xy-plane."""
    return yaw_from_quat_f(*q.tolist())


def yaw_from_quat_f(w: float, x: float, y: float, z: float) -> float:
    """Kernel of `yaw_from_quat` on python floats."""
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector v by unit quaternion q."""
    u = q[1:]
    t = 2.0 * np.cross(u, v)
    return v + q[0] * t + np.cross(u, t)


def wrap_angle(a: float | np.ndarray, period: float = 2 * np.pi) -> float | np.ndarray:
    """Wrap to [-period/2, period/2)."""
    return (a + period / 2) % period - period / 2
