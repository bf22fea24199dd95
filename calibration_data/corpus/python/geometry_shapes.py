"""2D geometry primitives: points, vectors, polygons and a few algorithms."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

EPS = 1e-9


@dataclass(frozen=True)
class Vec2:
    x: float
    y: float

    def __add__(self, other: "Vec2") -> "Vec2":
        return Vec2(self.x + other.x, self.y + other.y)

    def __sub__(self, other: "Vec2") -> "Vec2":
        return Vec2(self.x - other.x, self.y - other.y)

    def __mul__(self, k: float) -> "Vec2":
        return Vec2(self.x * k, self.y * k)

    __rmul__ = __mul__

    def dot(self, other: "Vec2") -> float:
        return self.x * other.x + self.y * other.y

    def cross(self, other: "Vec2") -> float:
        return self.x * other.y - self.y * other.x

    def length(self) -> float:
        return math.hypot(self.x, self.y)

    def normalized(self) -> "Vec2":
        n = self.length()
        if n < EPS:
            raise ZeroDivisionError("cannot normalize a zero vector")
        return Vec2(self.x / n, self.y / n)

    def rotated(self, angle: float) -> "Vec2":
        c, s = math.cos(angle), math.sin(angle)
        return Vec2(c * self.x - s * self.y, s * self.x + c * self.y)

    def as_tuple(self) -> Tuple[float, float]:
        return (self.x, self.y)


def orientation(a: Vec2, b: Vec2, c: Vec2) -> int:
    """Return 1 for counter-clockwise, -1 for clockwise, 0 if collinear."""
    value = (b - a).cross(c - a)
    if abs(value) < EPS:
        return 0
    return 1 if value > 0 else -1


def segments_intersect(p1: Vec2, p2: Vec2, q1: Vec2, q2: Vec2) -> bool:
    def on_segment(a: Vec2, b: Vec2, p: Vec2) -> bool:
        return (min(a.x, b.x) - EPS <= p.x <= max(a.x, b.x) + EPS
                and min(a.y, b.y) - EPS <= p.y <= max(a.y, b.y) + EPS)

    o1 = orientation(p1, p2, q1)
    o2 = orientation(p1, p2, q2)
    o3 = orientation(q1, q2, p1)
    o4 = orientation(q1, q2, p2)
    if o1 != o2 and o3 != o4:
        return True
    if o1 == 0 and on_segment(p1, p2, q1):
        return True
    if o2 == 0 and on_segment(p1, p2, q2):
        return True
    if o3 == 0 and on_segment(q1, q2, p1):
        return True
    if o4 == 0 and on_segment(q1, q2, p2):
        return True
    return False


class Polygon:
    def __init__(self, vertices: Iterable[Vec2]):
        self.vertices: List[Vec2] = list(vertices)
        if len(self.vertices) < 3:
            raise ValueError("a polygon needs at least 3 vertices")

    def edges(self):
        n = len(self.vertices)
        for i in range(n):
            yield self.vertices[i], self.vertices[(i + 1) % n]

    def signed_area(self) -> float:
        return 0.5 * sum(a.cross(b) for a, b in self.edges())

    def area(self) -> float:
        return abs(self.signed_area())

    def perimeter(self) -> float:
        return sum((b - a).length() for a, b in self.edges())

    def centroid(self) -> Vec2:
        area6 = 6.0 * self.signed_area()
        if abs(area6) < EPS:
            raise ValueError("degenerate polygon")
        cx = cy = 0.0
        for a, b in self.edges():
            f = a.cross(b)
            cx += (a.x + b.x) * f
            cy += (a.y + b.y) * f
        return Vec2(cx / area6, cy / area6)

    def contains(self, p: Vec2) -> bool:
        """Ray casting point-in-polygon test (boundary counts as inside)."""
        inside = False
        for a, b in self.edges():
            if orientation(a, b, p) == 0 and segments_intersect(a, b, p, p):
                return True
            if (a.y > p.y) != (b.y > p.y):
                x_cross = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y)
                if p.x < x_cross:
                    inside = not inside
        return inside

    def is_convex(self) -> bool:
        signs = set()
        n = len(self.vertices)
        for i in range(n):
            o = orientation(self.vertices[i], self.vertices[(i + 1) % n],
                            self.vertices[(i + 2) % n])
            if o:
                signs.add(o)
        return len(signs) <= 1


def convex_hull(points: Sequence[Vec2]) -> List[Vec2]:
    """Andrew's monotone chain; returns hull in counter-clockwise order."""
    pts = sorted(set(points), key=lambda p: (p.x, p.y))
    if len(pts) <= 2:
        return pts

    def half(seq):
        chain: List[Vec2] = []
        for p in seq:
            while len(chain) >= 2 and orientation(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower = half(pts)
    upper = half(reversed(pts))
    return lower[:-1] + upper[:-1]


if __name__ == "__main__":
    square = Polygon([Vec2(0, 0), Vec2(4, 0), Vec2(4, 4), Vec2(0, 4)])
    print("area", square.area(), "perimeter", square.perimeter())
    print("centroid", square.centroid())
    print("contains (2,2)?", square.contains(Vec2(2, 2)))
    cloud = [Vec2(math.cos(t) * 3, math.sin(t) * 2) for t in range(12)] + [Vec2(0, 0)]
    hull = convex_hull(cloud)
    print("hull size", len(hull), "convex?", Polygon(hull).is_convex())
