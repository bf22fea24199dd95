"""Root finding, quadrature and ODE integration in plain Python."""
import math
from typing import Callable, List, Tuple

Func = Callable[[float], float]


def bisection(f: Func, lo: float, hi: float, tol: float = 1e-10, max_iter: int = 200) -> float:
    flo, fhi = f(lo), f(hi)
    if flo * fhi > 0:
        raise ValueError("f(lo) and f(hi) must have opposite signs")
    for _ in range(max_iter):
        mid = (lo + hi) / 2
        fmid = f(mid)
        if abs(fmid) < tol or (hi - lo) / 2 < tol:
            return mid
        if flo * fmid < 0:
            hi, fhi = mid, fmid
        else:
            lo, flo = mid, fmid
    return (lo + hi) / 2


def newton(f: Func, df: Func, x0: float, tol: float = 1e-12, max_iter: int = 50) -> float:
    x = x0
    for i in range(max_iter):
        d = df(x)
        if d == 0:
            raise ZeroDivisionError(f"zero derivative at iteration {i}, x={x}")
        step = f(x) / d
        x -= step
        if abs(step) < tol:
            return x
    raise RuntimeError(f"newton did not converge after {max_iter} iterations")


def simpson(f: Func, a: float, b: float, n: int = 100) -> float:
    if n % 2:
        n += 1
    h = (b - a) / n
    total = f(a) + f(b)
    for i in range(1, n):
        total += (4 if i % 2 else 2) * f(a + i * h)
    return total * h / 3


def adaptive_simpson(f: Func, a: float, b: float, eps: float = 1e-9, depth: int = 40) -> float:
    def simple(lo, hi, flo, fmid, fhi):
        return (hi - lo) / 6 * (flo + 4 * fmid + fhi)

    def recurse(lo, hi, flo, fmid, fhi, whole, eps, depth):
        mid = (lo + hi) / 2
        lm, rm = (lo + mid) / 2, (mid + hi) / 2
        flm, frm = f(lm), f(rm)
        left = simple(lo, mid, flo, flm, fmid)
        right = simple(mid, hi, fmid, frm, fhi)
        if depth <= 0 or abs(left + right - whole) <= 15 * eps:
            return left + right + (left + right - whole) / 15
        return (recurse(lo, mid, flo, flm, fmid, left, eps / 2, depth - 1)
                + recurse(mid, hi, fmid, frm, fhi, right, eps / 2, depth - 1))

    fa, fb, fm = f(a), f(b), f((a + b) / 2)
    return recurse(a, b, fa, fm, fb, simple(a, b, fa, fm, fb), eps, depth)


def rk4(deriv: Callable[[float, List[float]], List[float]], y0: List[float],
        t0: float, t1: float, steps: int) -> List[Tuple[float, List[float]]]:
    """Classic fourth-order Runge-Kutta for systems y' = deriv(t, y)."""
    h = (t1 - t0) / steps
    t, y = t0, list(y0)
    out = [(t, y[:])]
    for _ in range(steps):
        k1 = deriv(t, y)
        k2 = deriv(t + h / 2, [yi + h / 2 * ki for yi, ki in zip(y, k1)])
        k3 = deriv(t + h / 2, [yi + h / 2 * ki for yi, ki in zip(y, k2)])
        k4 = deriv(t + h, [yi + h * ki for yi, ki in zip(y, k3)])
        y = [yi + h / 6 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4)]
        t += h
        out.append((t, y[:]))
    return out


if __name__ == "__main__":
    print("sqrt(2) ~", newton(lambda x: x * x - 2, lambda x: 2 * x, 1.0))
    print("cos root ~", bisection(math.cos, 0, 3))
    print("int sin 0..pi ~", simpson(math.sin, 0, math.pi))
    print("int exp(-x^2) ~", adaptive_simpson(lambda x: math.exp(-x * x), -5, 5), math.sqrt(math.pi))

    # simple harmonic oscillator: x'' = -x
    traj = rk4(lambda t, y: [y[1], -y[0]], [1.0, 0.0], 0.0, 2 * math.pi, 200)
    t_end, (x_end, v_end) = traj[-1]
    print(f"after one period: x={x_end:.6f} v={v_end:.6f}")
