"""Pure-Python dense matrix class with LU decomposition and solvers.

Intended for small systems (n < 200) where numpy is not available.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

Row = List[float]


class Matrix:
    __slots__ = ("rows", "cols", "data")

    def __init__(self, data: Iterable[Sequence[float]]):
        self.data: List[Row] = [list(map(float, r)) for r in data]
        self.rows = len(self.data)
        self.cols = len(self.data[0]) if self.data else 0
        if any(len(r) != self.cols for r in self.data):
            raise ValueError("ragged rows")

    @classmethod
    def zeros(cls, rows: int, cols: int) -> "Matrix":
        return cls([[0.0] * cols for _ in range(rows)])

    @classmethod
    def identity(cls, n: int) -> "Matrix":
        m = cls.zeros(n, n)
        for i in range(n):
            m.data[i][i] = 1.0
        return m

    @property
    def shape(self) -> Tuple[int, int]:
        return self.rows, self.cols

    def __getitem__(self, idx: Tuple[int, int]) -> float:
        i, j = idx
        return self.data[i][j]

    def __setitem__(self, idx: Tuple[int, int], value: float) -> None:
        i, j = idx
        self.data[i][j] = float(value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matrix) or other.shape != self.shape:
            return NotImplemented
        return all(
            abs(a - b) < 1e-9 for ra, rb in zip(self.data, other.data) for a, b in zip(ra, rb)
        )

    def __repr__(self) -> str:
        body = ",\n ".join("[" + ", ".join(f"{x:8.4f}" for x in r) + "]" for r in self.data)
        return f"Matrix([{body}])"

    def __add__(self, other: "Matrix") -> "Matrix":
        self._check_same_shape(other)
        return Matrix([[a + b for a, b in zip(ra, rb)] for ra, rb in zip(self.data, other.data)])

    def __sub__(self, other: "Matrix") -> "Matrix":
        self._check_same_shape(other)
        return Matrix([[a - b for a, b in zip(ra, rb)] for ra, rb in zip(self.data, other.data)])

    def __matmul__(self, other: "Matrix") -> "Matrix":
        if self.cols != other.rows:
            raise ValueError(f"shape mismatch {self.shape} @ {other.shape}")
        ot = other.T.data
        return Matrix([[sum(a * b for a, b in zip(r, c)) for c in ot] for r in self.data])

    def scale(self, k: float) -> "Matrix":
        return Matrix([[k * x for x in r] for r in self.data])

    @property
    def T(self) -> "Matrix":
        return Matrix([list(col) for col in zip(*self.data)])

    def _check_same_shape(self, other: "Matrix") -> None:
        if self.shape != other.shape:
            raise ValueError(f"shape mismatch {self.shape} vs {other.shape}")

    def lu(self) -> Tuple["Matrix", "Matrix", List[int], int]:
        """LU decomposition with partial pivoting.

        Returns (L, U, perm, sign) such that P @ A == L @ U, where P is the
        permutation given by ``perm`` and ``sign`` is its parity.
        """
        if self.rows != self.cols:
            raise ValueError("LU requires a square matrix")
        n = self.rows
        a = [row[:] for row in self.data]
        perm = list(range(n))
        sign = 1
        for k in range(n):
            pivot = max(range(k, n), key=lambda i: abs(a[i][k]))
            if abs(a[pivot][k]) < 1e-12:
                raise ZeroDivisionError("matrix is singular")
            if pivot != k:
                a[k], a[pivot] = a[pivot], a[k]
                perm[k], perm[pivot] = perm[pivot], perm[k]
                sign = -sign
            for i in range(k + 1, n):
                a[i][k] /= a[k][k]
                factor = a[i][k]
                for j in range(k + 1, n):
                    a[i][j] -= factor * a[k][j]
        L = Matrix.identity(n)
        U = Matrix.zeros(n, n)
        for i in range(n):
            for j in range(n):
                if j < i:
                    L.data[i][j] = a[i][j]
                else:
                    U.data[i][j] = a[i][j]
        return L, U, perm, sign

    def determinant(self) -> float:
        try:
            _, U, _, sign = self.lu()
        except ZeroDivisionError:
            return 0.0
        det = float(sign)
        for i in range(self.rows):
            det *= U.data[i][i]
        return det

    def solve(self, b: Sequence[float]) -> List[float]:
        L, U, perm, _ = self.lu()
        n = self.rows
        pb = [b[p] for p in perm]
        y = [0.0] * n
        for i in range(n):
            y[i] = pb[i] - sum(L.data[i][j] * y[j] for j in range(i))
        x = [0.0] * n
        for i in reversed(range(n)):
            s = sum(U.data[i][j] * x[j] for j in range(i + 1, n))
            x[i] = (y[i] - s) / U.data[i][i]
        return x

    def inverse(self) -> "Matrix":
        n = self.rows
        cols = [self.solve([1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
        return Matrix(cols).T


if __name__ == "__main__":
    A = Matrix([[4, -2, 1], [-2, 4, -2], [1, -2, 4]])
    b = [11, -16, 17]
    x = A.solve(b)
    print("x =", [round(v, 6) for v in x])
    print("det =", A.determinant())
    print("A @ A^-1 == I:", A @ A.inverse() == Matrix.identity(3))
