"""Small rotation helpers on numpy arrays (quaternions are w, x, y, z, as in MuJoCo).

numpy-only on purpose: the env core and the tasks must not import mujoco or scipy.
"""

from __future__ import annotations

import numpy as np

IDENTITY_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a ⊗ b."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The same rotation with w >= 0, so observations have no sign flips."""
    return -q if q[0] < 0 else q


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.array([1.0, 0.5 * v[0], 0.5 * v[1], 0.5 * v[2]]) / np.sqrt(1.0 + 0.25 * float(v @ v))
    axis = v / angle
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a unit quaternion."""
    q = quat_canonical(q)
    s = float(np.linalg.norm(q[1:]))
    if s < 1e-12:
        return 2.0 * q[1:]
    angle = 2.0 * np.arctan2(s, q[0])
    return q[1:] / s * angle


def quat_from_yaw(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def yaw_from_quat(q: np.ndarray) -> float:
    """Heading of the body x-axis in the world xy-plane."""
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector v by unit quaternion q."""
    u = q[1:]
    t = 2.0 * np.cross(u, v)
    return v + q[0] * t + np.cross(u, t)


def wrap_angle(a: float | np.ndarray, period: float = 2 * np.pi) -> float | np.ndarray:
    """Wrap to [-period/2, period/2)."""
    return (a + period / 2) % period - period / 2
